"""Run crawls: Scrapy settings, one crawler per site in one or N processes, the run summary.

The CLI (``steppewatch crawl``) calls ``run_crawl`` (or ``run_crawl_parallel``); Airflow
runs that CLI in a subprocess so each crawl gets its own Twisted reactor. Every crawler
records into its ``RunLedger`` (``steppewatch/ledger.py``); a crawl process returns the
ledgers, and ``finish_run`` (the same for one process or N) merges them into the run's
summary, with a verdict per site and for the run, and writes the run's manifest.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from steppewatch.archive import put_manifest
from steppewatch.config import Config
from steppewatch.layout import site_of_key
from steppewatch.ledger import RunLedger
from steppewatch.redaction import redact, redact_text
from steppewatch.registry import Site
from steppewatch.store import Store, check_store, open_store


def scrapy_settings(config: Config, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Settings a Scrapy user would expect of a polite news crawler: the project's defaults
    (``steppewatch/settings.py``), what the configuration gives, then the overrides."""
    import copy

    from steppewatch import settings as defaults

    settings: dict[str, Any] = {name: copy.deepcopy(value) for name, value in vars(defaults).items()
                                if name.isupper()}
    settings.update({"USER_AGENT": config.user_agent, "STORE_URI": config.store, "INDEX_URL": config.index,
                     "FIXEDPROXY_URL": config.proxy})
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
    started = datetime.now(UTC)
    check_archive(config, scrapy_settings(config, overrides))
    with tempfile.TemporaryDirectory(prefix="steppewatch-keys-") as keys_dir:
        result = crawl_in_process(sites, since, until, config, overrides, keys_dir)
        return finish_run(config, sites, since, until, started, [result], run_id=run_id)


def check_archive(config: Config, settings: dict[str, Any]) -> None:
    """Before fetching anything, the store and the index answer: a rerun then starts clean."""
    from scrapy.settings import Settings

    check_store(open_store(config.store))
    if Settings(settings).getbool("DEDUP_ENABLED"):
        from steppewatch.index import check_index

        check_index(config.index, open_store(config.store))  # reachable, and this store's (not another's)


@dataclass
class SiteResult:
    """One crawler's results: its ledger and Scrapy's own stats (HTTP statuses, retries)."""

    ledger: RunLedger
    stats: dict[str, Any]


@dataclass
class CrawlResult:
    """What one crawl process hands back to the run: per site id, its results."""

    sites: dict[str, SiteResult] = field(default_factory=dict)


def crawl_in_process(
    sites: list[Site],
    since: datetime,
    until: datetime,
    config: Config,
    overrides: dict[str, Any] | None = None,
    keys_dir: str | None = None,
) -> CrawlResult:
    """One crawler per site in this process's reactor; their ledgers, not a manifest.

    Each ledger writes its store keys to a file in ``keys_dir`` (the caller's, read by
    ``finish_run``), so they are not held in memory while the crawl runs.
    """
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    from spiders.news import NewsSpider
    from steppewatch.progress import ProgressBoard

    settings = scrapy_settings(config, overrides)
    if len(sites) > 1:
        # the run summary and the progress line say, once, what every crawler's stats dump
        # and per-minute LogStats line would repeat for each site
        settings.setdefault("STATS_DUMP", False)
        settings.setdefault("LOGSTATS_INTERVAL", 0)
    if Settings(settings).getbool("PROGRESS_ENABLED"):
        shard = settings.get("NEWS_SHARD")
        settings["PROGRESS_BOARD"] = ProgressBoard(Settings(settings).getfloat("PROGRESS_INTERVAL"),
                                                   label=f"[shard {shard}] " if shard != "0/1" else "")
    process = CrawlerProcess(settings)
    quiet_robots_errors()
    if len(sites) > 1 and str(settings["LOG_LEVEL"]).upper() != "DEBUG":
        quiet_crawler_setup_logs()
    crawlers = []
    # A backfill discovers tens of thousands of articles at once (sitemaps list them all):
    # queue their requests on disk (Scrapy's JOBDIR queues), one directory per crawler,
    # so memory stays flat however long the window.
    work = tempfile.mkdtemp(prefix="steppewatch-run-")
    try:
        for site in sites:
            crawler = process.create_crawler(NewsSpider)
            if settings.get("NEWS_DISK_QUEUES"):
                crawler.settings.set("JOBDIR", os.path.join(work, site.id))
            if keys_dir is not None:
                shard = str(settings.get("NEWS_SHARD") or "0/1").replace("/", "of")
                crawler.settings.set("LEDGER_KEYS_FILE", os.path.join(keys_dir, f"{site.id}.{shard}.keys"))
            crawlers.append((site, crawler))
            process.crawl(crawler, site=site, since=since, until=until)
        process.start()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = CrawlResult()
    for site, crawler in crawlers:
        try:
            ledger = crawler.get_extension(RunLedger) or RunLedger()
        except RuntimeError:  # the crawler failed before its extensions were made
            ledger = RunLedger()
        ledger.close()
        result.sites[site.id] = SiteResult(ledger, dict(crawler.stats.get_stats()))
    return result


def interrupted_sites(summary: dict[str, Any]) -> list[str]:
    """The sites whose crawl a SIGTERM or SIGINT stopped before it finished.

    Scrapy stops every crawler gracefully on the first signal and records the finish reason
    ``shutdown``: what was stored stays stored, the rest of the window was never fetched.
    """
    return sorted(site for site, s in summary["sites"].items()
                  if "shutdown" in str(s.get("finish_reason") or "").split(","))


def quiet_robots_errors() -> None:
    """A site's unreachable robots.txt is logged in one line, not with a traceback."""
    import logging

    from spiders.middlewares import network_error_without_traceback

    robots = logging.getLogger("scrapy.downloadermiddlewares.robotstxt")
    if network_error_without_traceback not in robots.filters:
        robots.addFilter(network_error_without_traceback)


# what Scrapy logs at INFO for each crawler it sets up and closes (its settings, middlewares,
# extensions, "Spider opened"): with one crawler per site, 20 lines times every site
CRAWLER_SETUP_LOGGERS = ("scrapy.middleware", "scrapy.addons", "scrapy.crawler", "scrapy.core.engine")


def quiet_crawler_setup_logs() -> None:
    """Scrapy's per-crawler set-up lines at WARNING and above only (a crawl of many sites)."""
    import logging

    for name in CRAWLER_SETUP_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


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
    unique rows arbitrate any race). Each process (its own reactor: spawned, not forked)
    returns its ledgers to this one, and ``finish_run`` makes one run with one manifest of
    them, as if one process had crawled.
    """
    import multiprocessing
    import os
    import signal
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    started = datetime.now(UTC)
    check_archive(config, scrapy_settings(config, overrides))
    shards = [f"{k}/{processes}" for k in range(processes)]
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="steppewatch-keys-") as keys_dir, \
            ProcessPoolExecutor(processes, mp_context=context, max_tasks_per_child=1) as pool:
        futures = [pool.submit(crawl_in_process, sites, since, until, config,
                               {**(overrides or {}), "NEWS_SHARD": shard}, keys_dir) for shard in shards]

        def pass_on(signum: int, _frame: object) -> None:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signum)

        # the shards stop gracefully with this process (their sites end ``shutdown``, merged by
        # finish_run): a SIGTERM is passed on; a terminal's Ctrl-C reaches them itself (one
        # process group), so this process only waits for them, since a second SIGINT would
        # make Scrapy stop them at once
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, pass_on),
                    signal.SIGINT: signal.signal(signal.SIGINT, lambda *_: None)}
        try:
            results = [future.result() for future in futures]
        except BrokenProcessPool as exc:
            raise RuntimeError(f"a crawl process of the run died: {exc}") from None
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return finish_run(config, sites, since, until, started, results, shards=shards)


def finish_run(
    config: Config,
    sites: list[Site],
    since: datetime,
    until: datetime,
    started: datetime,
    results: list[CrawlResult],
    run_id: str | None = None,
    shards: list[str] | None = None,
) -> dict[str, Any]:
    """The run's summary and manifest from what its one or N crawl processes returned.

    Each site's ledgers (one per process) merge into one; the keys written and deleted
    are those of every ledger; the manifest is written once, here.
    """
    per_site: dict[str, dict[str, Any]] = {}
    written: set[str] = set()
    deleted: set[str] = set()
    for site in sites:
        parts = [r.sites[site.id] for r in results if site.id in r.sites]
        ledger = RunLedger.merged([p.ledger for p in parts])
        per_site[site.id] = ledger.site_summary(merge_scrapy_stats([p.stats for p in parts]))
        site_written, site_deleted = ledger.held_keys()
        written |= site_written
        deleted |= site_deleted
    written -= deleted
    count_site_keys(per_site, written, deleted)
    summary: dict[str, Any] = {
        "run_id": run_id or new_run_id(started),
        "since": since.isoformat(),
        "until": until.isoformat(),
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "store": redact(config.store),
        "index": redact(config.index),
    }
    if shards:
        summary["processes"] = len(shards)
        summary["shards"] = shards
    summary["sites"] = per_site
    summary["totals"] = _totals(per_site)
    write_manifest(open_store(config.store), summary, written, deleted)
    return summary


def merge_scrapy_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Scrapy's stats of one site's crawlers: counts add up, the finish reasons are joined."""
    out: dict[str, Any] = {}
    for stats in parts:
        for key, value in stats.items():
            if key.startswith(("downloader/response_status_count/", "retry/")) and isinstance(value, (int, float)):
                out[key] = out.get(key, 0) + value
    reasons = sorted({str(p["finish_reason"]) for p in parts if p.get("finish_reason")})
    out["finish_reason"] = ",".join(reasons) or None
    return out


def count_site_keys(per_site: dict[str, dict[str, Any]], written: set[str], deleted: set[str]) -> None:
    """Per site, the keys under its prefix (``…/site=<id>/…``) the run wrote and deleted."""
    for site, summary in per_site.items():
        summary["keys_written"] = sum(1 for k in written if site_of_key(k) == site)
        summary["keys_deleted"] = sum(1 for k in deleted if site_of_key(k) == site)


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


def _totals(per_site: dict[str, dict[str, Any]]) -> dict[str, Any]:
    # every count by reason, summed over the sites: skipped URLs, dates not used, source
    # errors as well as the articles'
    groups = ("rejected", "errors", "outcome", "skipped", "undated", "source_errors", "store_errors", "refused")
    counts = ("discovered", "fetched", "stored", "out_of_window", "found", "keys_written", "not_stored")
    totals: dict[str, Any] = {key: 0 for key in counts}
    totals.update({group: defaultdict(int) for group in groups})
    for summary in per_site.values():
        for key in counts:
            totals[key] += summary.get(key, 0)
        for group in groups:
            for sub, n in summary.get(group, {}).items():
                totals[group][sub] += n
    for group in groups:
        totals[group] = dict(sorted(totals[group].items()))
    totals["sites_all_sources_failed"] = sorted(s for s, v in per_site.items() if v["all_sources_failed"])
    by_state: dict[str, list[str]] = defaultdict(list)
    for site, summary in per_site.items():
        by_state[summary["state"]].append(site)
    totals["sites_by_state"] = {state: sorted(ids) for state, ids in sorted(by_state.items())}
    totals["verdict"] = run_verdict(per_site, totals)
    return totals


def run_verdict(per_site: dict[str, dict[str, Any]], totals: dict[str, Any]) -> str:
    """One line for the whole run: new articles, nothing new, or nothing reachable."""
    states = totals["sites_by_state"]
    n = len(per_site)
    if n and len(states.get("unreachable", [])) == n:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(totals["source_errors"].items(), key=lambda kv: -kv[1]))
        return f"nothing reachable: every source of every site failed ({kinds})"
    parts = []
    if totals["stored"]:
        parts.append(f"{totals['stored']} new from {len(states.get('new', []))} of {n} site(s)")
    else:
        parts.append(f"nothing new ({totals['found']} found)")
    for state, label in (("nothing_new", "nothing new"), ("nothing_found", "nothing found"),
                         ("unreachable", "nothing reachable")):
        if states.get(state) and (totals["stored"] or state != "nothing_new"):
            parts.append(f"{label} on {len(states[state])} site(s)")
    errors = sum(totals["errors"].values()) + sum(totals["source_errors"].values())
    if errors:
        parts.append(f"{errors} error(s)")
    return "; ".join(parts)
