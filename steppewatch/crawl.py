"""Run crawls: Scrapy settings, one crawler per site in one process, and the run summary.

The CLI (``steppewatch crawl``) calls ``run_crawl``; Airflow runs that CLI in a
subprocess so each crawl gets its own Twisted reactor. The summary is built from each
crawler's stats (``sw/`` keys written by the spider and pipelines).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from steppewatch.archive import put_manifest
from steppewatch.config import Config
from steppewatch.layout import site_of_key
from steppewatch.redaction import redact, redact_text
from steppewatch.registry import Site
from steppewatch.store import Store, check_store, open_store

PIPELINES = {
    "pipelines.items.ExtractPipeline": 100,
    "pipelines.items.WindowPipeline": 200,
    "pipelines.items.StorePipeline": 300,
}


def scrapy_settings(config: Config, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Settings a Scrapy user would expect of a polite news crawler."""
    settings: dict[str, Any] = {
        "BOT_NAME": "steppewatch",
        "USER_AGENT": config.user_agent,
        "ROBOTSTXT_OBEY": True,
        "ROBOTSTXT_PARSER": "scrapy.robotstxt.ProtegoRobotParser",
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": 1.0,
        "AUTOTHROTTLE_MAX_DELAY": 30.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_DELAY": 0.5,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
        # Scrapy starts this many asyncio worker tasks for every response's output; the
        # pipelines are synchronous, so 100 (the default) only cost ~100 tasks per page
        "CONCURRENT_ITEMS": 4,
        "DOWNLOAD_TIMEOUT": 30,
        "DOWNLOAD_MAXSIZE": 10 * 1024 * 1024,
        "DOWNLOAD_WARNSIZE": 2 * 1024 * 1024,
        "REDIRECT_MAX_TIMES": 5,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 3,
        "RETRY_HTTP_CODES": [429, 500, 502, 503, 504, 522, 524, 408],
        "RETRY_BACKOFF_BASE": 1.0,
        "RETRY_BACKOFF_MAX": 60.0,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        # Scrapy 2.19 otherwise serves an HTTP endpoint that runs Python code sent to it
        # (token in a job file under the user's state directory) for every crawl
        "REMOTE_CONTROL_ENABLED": False,
        "LOG_LEVEL": "INFO",
        "LOG_FORMATTER": "spiders.middlewares.QuietDropLogFormatter",
        "DOWNLOADER_MIDDLEWARES": {
            "spiders.middlewares.NetGuardMiddleware": 60,
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "spiders.middlewares.BackoffRetryMiddleware": 550,
            "spiders.middlewares.FixedProxyMiddleware": 740,
        },
        # http(s) only: no file://, ftp://, s3:// or data: fetches, whatever a page links to
        "DOWNLOAD_HANDLERS": {"file": None, "ftp": None, "s3": None, "data": None},
        "NETGUARD_ALLOW_PRIVATE": False,
        # the address a name is connected to is the one checked (no DNS rebinding past the guard)
        "TWISTED_DNS_RESOLVER": "spiders.resolver.GuardedResolver",
        "STORE_RETRY_TIMES": 3,
        "STORE_RETRY_BACKOFF": 1.0,
        "STORE_MAX_CONSECUTIVE_FAILURES": 5,
        "ITEM_PIPELINES": dict(PIPELINES),
        # the archive (index + store) shared by the spider and the pipelines
        "EXTENSIONS": {"steppewatch.crawl_archive.CrawlArchive": 100},
        "STORE_URI": config.store,
        "INDEX_URL": config.index,
        "DEDUP_ENABLED": True,
        "DEDUP_RECHECK_WITHIN_HOURS": 48,
        "DEDUP_RECHECK_AFTER_HOURS": 6,
        "DEDUP_MAX_RECHECKS": 1,
        "NEWS_REPROCESS": False,
        # a page extraction rejected is fetched again this many hours after its 1st, 2nd,
        # 3rd… check (the last interval repeats): a stub may become an article, an error
        # page come back; [0] re-checks every run
        "NEWS_REJECTION_RECHECK": [24, 168, 720],
        "FIXEDPROXY_URL": config.proxy,
        # which articles a run owns (steppewatch/windows.py): backfill runs by date, with a
        # tolerance at the edges; discover runs (scheduled) every new URL they fetch, reading
        # their sources back to the look-back
        "NEWS_WINDOW_MODE": "backfill",
        "NEWS_LOOKBACK_HOURS": 48,
        "NEWS_DATE_TOLERANCE_HOURS": 14,
        "NEWS_MAX_CHILD_SITEMAPS": 50,
        "NEWS_DISK_QUEUES": True,
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
    }
    settings.update(config.scrapy)
    settings.update(overrides or {})
    return settings


def run_crawl(
    sites: list[Site],
    since: datetime,
    until: datetime,
    config: Config,
    overrides: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Crawl the sites over [since, until) in this process; return the run summary."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    from spiders.news import NewsSpider

    started = datetime.now(UTC)
    settings = scrapy_settings(config, overrides)
    check_store(open_store(config.store))  # before fetching anything: a rerun then starts clean
    if Settings(settings).getbool("DEDUP_ENABLED"):
        from steppewatch.index import check_index

        check_index(config.index, open_store(config.store))  # reachable, and this store's (not another's)
    process = CrawlerProcess(settings)
    quiet_robots_errors()
    crawlers = []
    # A backfill discovers tens of thousands of articles at once (sitemaps list them all):
    # queue their requests on disk (Scrapy's JOBDIR queues), one directory per crawler,
    # and log the keys written to a file per crawler, so memory stays flat however long
    # the window.
    work = tempfile.mkdtemp(prefix="steppewatch-run-")
    try:
        for site in sites:
            crawler = process.create_crawler(NewsSpider)
            if settings.get("NEWS_DISK_QUEUES"):
                crawler.settings.set("JOBDIR", os.path.join(work, site.id))
            crawler.settings.set("STORE_KEYS_LOG", os.path.join(work, f"{site.id}.keys"))
            crawlers.append((site, crawler))
            process.crawl(crawler, site=site, since=since, until=until)
        process.start()
        written, deleted = read_keys_logs(os.path.join(work, f"{site.id}.keys") for site in sites)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per_site = {site.id: summarize_stats(crawler.stats.get_stats()) for site, crawler in crawlers}
    count_site_keys(per_site, written, deleted)
    summary = {
        "run_id": run_id or new_run_id(started),
        "since": since.isoformat(),
        "until": until.isoformat(),
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "store": redact(config.store),
        "index": redact(config.index),
        "sites": per_site,
        "totals": _totals(per_site),
    }
    write_manifest(open_store(config.store), summary, written, deleted)
    return summary


def interrupted_sites(summary: dict[str, Any]) -> list[str]:
    """The sites whose crawl a SIGTERM or SIGINT stopped before it finished.

    Scrapy stops every crawler gracefully on the first signal and records the finish reason
    ``shutdown``: what was stored stays stored, the rest of the window was never fetched.
    """
    return sorted(site for site, s in summary["sites"].items() if s.get("finish_reason") == "shutdown")


def quiet_robots_errors() -> None:
    """A site's unreachable robots.txt is logged in one line, not with a traceback."""
    import logging

    from spiders.middlewares import network_error_without_traceback

    robots = logging.getLogger("scrapy.downloadermiddlewares.robotstxt")
    if network_error_without_traceback not in robots.filters:
        robots.addFilter(network_error_without_traceback)


def read_keys_logs(paths: Iterable[str]) -> tuple[set[str], set[str]]:
    """The keys a run wrote (and still holds) and deleted, from the store pipeline's logs."""
    written: set[str] = set()
    deleted: set[str] = set()
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    key = line[1:].rstrip("\n")
                    (written if line[0] == "+" else deleted).add(key)
        except FileNotFoundError:  # the crawler stored nothing
            continue
    return written - deleted, deleted


def count_site_keys(per_site: dict[str, dict[str, Any]], written: set[str], deleted: set[str]) -> None:
    """Per site, the keys under its prefix (``…/site=<id>/…``) the run wrote and deleted."""
    for site, summary in per_site.items():
        summary["keys_written"] = sum(1 for k in written if site_of_key(k) == site)
        summary["keys_deleted"] = sum(1 for k in deleted if site_of_key(k) == site)


def new_run_id(started: datetime | None = None) -> str:
    return f"{(started or datetime.now(UTC)).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def run_crawl_parallel(
    sites: list[Site],
    since: datetime,
    until: datetime,
    config: Config,
    overrides: dict[str, Any] | None = None,
    processes: int = 2,
) -> dict[str, Any]:
    """One run in ``processes`` crawl processes, to use every core on a large backfill.

    A Scrapy process is single-threaded and extraction and dedup are CPU-bound, so each
    process fetches the articles whose URL hashes to its shard (``NEWS_SHARD``); every
    process reads the same feeds and sitemaps. They share the store and the index (whose
    unique rows arbitrate any race), and their summaries merge into one run with one
    manifest, as if one process had crawled.
    """
    import signal
    import subprocess
    import sys
    from dataclasses import replace

    from steppewatch.errors import ExitCode

    started = datetime.now(UTC)
    check_store(open_store(config.store))
    from steppewatch.index import check_index

    check_index(config.index, open_store(config.store))
    run_id = new_run_id(started)
    settings = {**config.scrapy, **(overrides or {})}
    env = replace(config, scrapy=settings).to_env()
    children = []
    for k in range(processes):
        args = [sys.executable, "-m", "steppewatch.cli", "crawl", *(s.id for s in sites),
                "--since", since.isoformat(), "--until", until.isoformat(), "--json",
                "--set", f"NEWS_SHARD={k}/{processes}", "--run-id", f"{run_id}.{k}"]
        children.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True))
    parts = []
    stopped = False

    def pass_on(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    # the shards stop gracefully with this process (exit 5 each, merged below): a SIGTERM is
    # passed on; a terminal's Ctrl-C reaches them itself (one process group), so this process
    # only waits for them, since a second SIGINT would make Scrapy stop them at once
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, pass_on),
                signal.SIGINT: signal.signal(signal.SIGINT, lambda *_: None)}
    try:
        for child in children:
            out, _ = child.communicate()
            if child.returncode not in (ExitCode.OK, ExitCode.SOURCES_FAILED, ExitCode.INCOMPLETE):
                raise RuntimeError(f"crawl process {child.args[-1]} exited {child.returncode}")
            stopped = stopped or child.returncode == ExitCode.INCOMPLETE
            parts.append(json.loads(out))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    store = open_store(config.store)
    written: set[str] = set()
    deleted: set[str] = set()
    for part in parts:  # each shard's manifest lists its keys
        shard = json.loads(store.get(part["manifest"]))
        written |= set(shard["keys_written"])
        deleted |= set(shard["keys_deleted"])
    written -= deleted
    per_site = {site.id: merge_site_summaries([p["sites"][site.id] for p in parts]) for site in sites}
    for site in sites:  # a site a signal stopped in any shard is incomplete (``interrupted_sites``)
        if stopped and any(p["sites"][site.id].get("finish_reason") == "shutdown" for p in parts):
            per_site[site.id]["finish_reason"] = "shutdown"
    count_site_keys(per_site, written, deleted)
    summary = {
        "run_id": run_id, "since": since.isoformat(), "until": until.isoformat(),
        "started": started.isoformat(), "finished": datetime.now(UTC).isoformat(),
        "store": redact(config.store), "index": redact(config.index), "processes": processes,
        "shard_runs": [p["run_id"] for p in parts], "sites": per_site, "totals": _totals(per_site),
    }
    write_manifest(store, summary, written, deleted)
    return summary


def merge_site_summaries(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One site's summary from its shards: counts add up, sources are read by every shard."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key in ("sources", "keys_written", "keys_deleted"):  # recounted from the merged keys
                continue
            elif isinstance(value, bool):
                out[key] = out.get(key, True) and value
            elif isinstance(value, (int, float)):
                out[key] = out.get(key, 0) + value
            elif isinstance(value, dict):
                merged = out.setdefault(key, {})
                for sub, n in value.items():
                    merged[sub] = merged.get(sub, 0) + n if isinstance(n, (int, float)) else n
    sources: dict[str, dict[str, Any]] = {}
    for part in parts:
        for src in part.get("sources", []):
            seen = sources.get(src["url"])
            if seen is None:
                sources[src["url"]] = dict(src)
                continue
            for field in ("discovered", "fetched", "stored", "rejected", "errors"):  # split between shards
                seen[field] = (seen.get(field) or 0) + (src.get(field) or 0)
            for field in ("error_kinds", "rejected_kinds"):
                merged = dict(seen.get(field) or {})
                for kind, n in (src.get(field) or {}).items():
                    merged[kind] = merged.get(kind, 0) + n
                seen[field] = merged
            seen["error"] = seen.get("error") or src.get("error")
    out["sources"] = list(sources.values())
    return out


def write_manifest(store: Store, summary: dict[str, Any], written: set[str], deleted: set[str]) -> str | None:
    """``runs/<run_id>.json``: window, sites, counts and the keys this run wrote and deleted.

    A store that fails now (after the crawl) leaves no manifest: the summary says so
    (``manifest_error``) and the CLI exits 3, so the window is run again.
    """
    try:
        return _write_manifest(store, summary, written, deleted)
    except Exception as exc:  # the run's records are stored or not; only its manifest is missing
        summary["manifest"] = None
        summary["manifest_error"] = redact_text(f"{type(exc).__name__}: {exc}")[:500]
        return None


def _write_manifest(store: Store, summary: dict[str, Any], written: set[str], deleted: set[str]) -> str:
    manifest = {
        "run_id": summary["run_id"], "since": summary["since"], "until": summary["until"],
        "started": summary["started"], "finished": summary["finished"],
        "sites": sorted(summary["sites"]),
        "counts": {site: {k: v for k, v in s.items() if k != "sources"} for site, s in summary["sites"].items()},
        "totals": summary["totals"],
        "keys_written": sorted(written),
        "keys_deleted": sorted(deleted),
    }
    key = put_manifest(store, summary["run_id"], manifest)
    summary["manifest"] = key
    return key


def summarize_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """Fold one crawler's stats into the per-site summary."""
    out: dict[str, Any] = {
        "discovered": 0, "fetched": 0, "stored": 0, "out_of_window": 0,
        "rejected": {}, "errors": {}, "source_errors": {}, "skipped": {}, "undated": {}, "http_status": {},
        "outcome": {}, "store_errors": {}, "not_stored": 0, "sources": [],
    }
    sources: dict[str, dict[str, Any]] = defaultdict(dict)
    uncaught: dict[str, int] = {}
    for key, value in sorted(stats.items()):
        if key.startswith("downloader/response_status_count/"):
            out["http_status"][key.rsplit("/", 1)[1]] = value
        if key.startswith("spider_exceptions/") and key != "spider_exceptions/count":
            uncaught[f"exception_{key.split('/', 1)[1]}"] = value
        if not key.startswith("sw/"):
            continue
        name = key[3:]
        if name.startswith("source/"):
            url, field = name[len("source/"):].rsplit("/", 1)
            sources[url][field] = value
        elif name in ("keys_logged", "keys_deleted_logged"):  # counted from the keys log instead
            continue
        elif "/" in name:
            group, sub = name.split("/", 1)
            out.setdefault(group, {})[sub] = value
        else:
            out[name] = value
    for url, info in sources.items():
        entry = {"url": url, "kind": info.get("kind", "?"), "status": info.get("status"),
                 "content_type": info.get("content_type"), "format": info.get("format"),
                 "items": info.get("items", 0), "discovered": info.get("discovered", 0),
                 "fetched": info.get("fetched", 0), "stored": info.get("stored", 0),
                 "rejected": info.get("rejected", 0), "errors": info.get("errors", 0),
                 "error": info.get("error"),
                 # per kind: the articles this source listed that failed (timeout, http_503…) or were rejected
                 "error_kinds": {f[6:]: v for f, v in sorted(info.items()) if f.startswith("error:")},
                 "rejected_kinds": {f[9:]: v for f, v in sorted(info.items()) if f.startswith("rejected:")}}
        if entry["kind"] in ("feed", "sitemap", "listing", "discovered_listing"):
            out["sources"].append(entry)
    # an exception a callback raised and did not catch (Scrapy counts it): what that source
    # listed was lost, so it is a source error of the site (which source, only the log says)
    for kind, n in uncaught.items():
        out["source_errors"][kind] = out["source_errors"].get(kind, 0) + n
    out["retries"] = {k.split("/", 1)[1]: v for k, v in stats.items()
                      if k.startswith("retry/") and not k.startswith("retry/reason_count")}
    out["finish_reason"] = stats.get("finish_reason")
    registered = [s for s in out["sources"] if s["kind"] != "discovered_listing"]
    out["all_sources_failed"] = bool(registered) and all(s["error"] for s in registered)
    return out


def _totals(per_site: dict[str, dict[str, Any]]) -> dict[str, Any]:
    # every count by reason, summed over the sites: skipped URLs (sw/skipped/*), dates not
    # used (sw/undated/*), source errors (sw/source_errors/*) as well as the articles'
    groups = ("rejected", "errors", "outcome", "skipped", "undated", "source_errors")
    totals: dict[str, Any] = {"discovered": 0, "fetched": 0, "stored": 0, "out_of_window": 0,
                              **{group: defaultdict(int) for group in groups}, "keys_written": 0, "not_stored": 0}
    for summary in per_site.values():
        totals["keys_written"] += summary.get("keys_written", 0)
        for key in ("discovered", "fetched", "stored", "out_of_window", "not_stored"):
            totals[key] += summary.get(key, 0)
        for group in groups:
            for sub, n in summary.get(group, {}).items():
                totals[group][sub] += n
    for group in groups:
        totals[group] = dict(totals[group])
    totals["sites_all_sources_failed"] = sorted(s for s, v in per_site.items() if v["all_sources_failed"])
    return totals
