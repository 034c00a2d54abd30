"""The ``steppewatch`` command line: sites, crawl, demo, extract.

``main`` reads the configuration once (``Config.from_env``) inside its error handling and
passes it to the command; every error a user can cause or fix is one line on stderr (no
traceback, no password) and one exit code of ``steppewatch.errors.ExitCode``, listed in
``--help`` (``EXIT_CODES``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import zlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steppewatch.alerts.rules import RulesError
from steppewatch.config import Config
from steppewatch.errors import EXIT_CODES, ExitCode, SteppewatchError, Unavailable
from steppewatch.redaction import redact, redact_text
from steppewatch.registry import RegistryError, Site, adhoc_site, load_registry

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# the demo's sample sites (tests/fixtures/sites.yaml and sites/), shipped as package data
SAMPLES = Path(__file__).resolve().parent / "data" / "demo"
DEMO_STORE = "data/demo"
DEMO_INDEX = "sqlite:///data/demo-index.sqlite"
DEMO_SINCE = "2024-12-01T00:00:00Z"
DEMO_UNTIL = "2024-12-08T00:00:00Z"


class UsageError(SteppewatchError):
    """A command line that cannot be run (a bad window, a path that does not exist): exit 2."""

    exit_code = ExitCode.CONFIG


def parse_when(value: str, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--{name}: not an ISO 8601 date or datetime: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _parse_set(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


# -- sites -----------------------------------------------------------------------
def cmd_sites(args: argparse.Namespace, config: Config) -> int:
    registry = load_registry(config.sites)
    # the sites named (each must be in the registry, letter for letter), or all of them
    sites = [registry.get(s) for s in dict.fromkeys(args.sites)] if args.sites else registry.sites
    if not args.check:
        rows = [(s.id, s.country, ",".join(s.languages), len(s.feeds), len(s.sitemaps),
                 len(s.listings), "yes" if s.verified else "no", "yes" if s.enabled else "no",
                 s.schedule or "@hourly") for s in sites]
        _table(("id", "country", "lang", "feeds", "sitemaps", "listings", "verified", "enabled",
                "schedule"), rows)
        print(f"\n{len(sites)} of {len(registry.sites)} sites in {registry.path}" if args.sites
              else f"\n{len(registry.sites)} sites in {registry.path}")
        return 0
    from steppewatch.probe import probe_registry

    print(f"{registry.path}: valid, {len(registry.sites)} sites; probing sources of {len(sites)} ...")
    results = probe_registry(sites, config, timeout=args.timeout)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
    else:
        _table(("site", "kind", "status", "content type", "items", "result", "url"),
               [(r["site"], r["kind"], r["status"] or "-", (r["content_type"] or "-")[:28],
                 r["items"], r["result"], r["url"]) for r in results])
    return 0


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


# -- crawl -----------------------------------------------------------------------
def _select_sites(args: argparse.Namespace, config: Config) -> list[Site]:
    registry = load_registry(config.sites)
    if args.all:
        return registry.enabled()
    if not args.sites:
        raise UsageError("name at least one SITE or pass --all")
    return [registry.get(s) for s in args.sites]


def cmd_crawl(args: argparse.Namespace, config: Config) -> int:
    since, until = parse_when(args.since, "since"), parse_when(args.until, "until")
    if since >= until:
        raise UsageError(f"--since {args.since} is not before --until {args.until}")
    if args.store:
        config = replace(config, store=args.store)
    sites = _select_sites(args, config)
    from steppewatch.crawl import interrupted_sites, run_crawl

    overrides = _parse_set(args.set or [])
    if args.reprocess:
        overrides["NEWS_REPROCESS"] = True
    if args.mode:
        overrides["NEWS_WINDOW_MODE"] = args.mode
    if args.progress or sys.stderr.isatty():
        overrides.setdefault("PROGRESS_ENABLED", True)
    if args.processes > 1:
        from steppewatch.crawl import run_crawl_parallel

        summary = run_crawl_parallel(sites, since, until, config, overrides, args.processes)
    else:
        summary = run_crawl(sites, since, until, config, overrides, run_id=args.run_id)
    print_summary(summary, as_json=args.json)
    incomplete = False
    if summary["totals"]["not_stored"]:
        errors = ", ".join(f"{k}={v}" for k, v in sorted(_store_errors(summary).items()))
        print(f"steppewatch: error: {summary['totals']['not_stored']} articles could not be stored ({errors}); "
              f"nothing half-written is kept: run the same window again to complete it", file=sys.stderr)
        incomplete = True
    if summary.get("manifest_error"):
        print(f"steppewatch: error: the run's manifest could not be written ({summary['manifest_error']}); "
              f"run the same window again", file=sys.stderr)
        incomplete = True
    if incomplete:
        return ExitCode.UNAVAILABLE
    stopped = interrupted_sites(summary)
    if stopped:
        print(f"steppewatch: error: the run is incomplete: it was interrupted (SIGTERM or SIGINT) before "
              f"{', '.join(stopped)} finished; the {summary['totals']['stored']} articles stored stay stored: "
              f"run the same window again to complete it", file=sys.stderr)
        return ExitCode.INCOMPLETE
    if len(summary["totals"]["sites_all_sources_failed"]) == len(sites):
        print(f"steppewatch: error: every source of every site failed ({', '.join(s.id for s in sites)}): "
              f"see the sources in the summary", file=sys.stderr)
        return ExitCode.SOURCES_FAILED
    return ExitCode.OK


def _store_errors(summary: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in summary["sites"].values():
        for kind, n in s.get("store_errors", {}).items():
            out[kind] = out.get(kind, 0) + n
    return out


def print_summary(summary: dict[str, Any], as_json: bool = False) -> None:
    """The run summary: JSON, or tables an operator reads: per site its verdict, counts,
    errors by kind and skips by reason; the failing sources; the run's verdict."""
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
        return
    print(f"\nrun {summary['run_id']}  window [{summary['since']}, {summary['until']})")
    rows = []
    for site, s in summary["sites"].items():
        rows.append((site, s.get("found", "-"), s["discovered"], s["fetched"], s["stored"],
                     _counts({**s["errors"], **s["source_errors"]}), _counts(_skips(s))))
    _table(("site", "found", "requested", "fetched", "stored", "errors", "skipped"), rows)
    print("\nverdicts:")
    width = max((len(site) for site in summary["sites"]), default=0)
    for site, s in summary["sites"].items():
        print(f"  {site:<{width}}  {s.get('verdict', '')}")
    failing = [(site, src) for site, s in summary["sites"].items() for src in s["sources"]
               if src["error"] or src["errors"]]
    if failing:
        print("\nsources with errors:")
        for site, src in failing:
            state = src["error"] or _counts(src.get("error_kinds") or {})
            print(f"  {site:<18} {src['kind']:<8} {str(src['status'] or '-'):<4} items={src['items']:<4} "
                  f"{state:<36} {src['url']}")
    t = summary["totals"]
    errors = {**t["errors"], **{f"source {k}": v for k, v in t["source_errors"].items()}}
    print(f"\ntotal: found {t.get('found', '-')}, fetched {t['fetched']}, stored {t['stored']}, "
          f"errors {sum(errors.values())}{' (' + _counts(errors) + ')' if errors else ''}, "
          f"skipped {sum(t['skipped'].values()) + t['out_of_window'] + sum(t['rejected'].values())}"
          f"{' (' + _counts(_skips(t)) + ')' if _skips(t) else ''}; store: {summary['store']}")
    if t.get("verdict"):
        print(f"verdict: {t['verdict']}")


def _skips(s: dict[str, Any]) -> dict[str, int]:
    """Every URL found and not stored as new, by reason: index skips, the window, rejections."""
    out = dict(s["skipped"])
    if s["out_of_window"]:
        out["out_of_window"] = out.get("out_of_window", 0) + s["out_of_window"]
    for reason, n in s["rejected"].items():
        out[f"rejected_{reason}"] = n
    return out


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "-"


# -- demo ------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    from steppewatch.crawl import run_crawl
    from steppewatch.replay import ReplayServer

    # the demo's own store and index, unless the environment names them
    store = config.store if "store" in config.given else DEMO_STORE
    index = config.index if "index" in config.given else DEMO_INDEX
    registry = load_registry(SAMPLES / "sites.yaml")
    server = ReplayServer(SAMPLES / "sites")
    proxy = server.start()
    print(f"replaying the sample sites {', '.join(server.hosts)} on {proxy}",
          file=sys.stderr if args.json else sys.stdout)
    config = replace(config, store=store, index=index, proxy=proxy)
    # Local replay: no need to wait between requests.
    fast = {"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0, "RETRY_BACKOFF_BASE": 0.2,
            "LOG_LEVEL": "WARNING"}
    try:
        summary = run_crawl(registry.sites, parse_when(DEMO_SINCE, "since"),
                            parse_when(DEMO_UNTIL, "until"), config, fast)
    finally:
        server.stop()
    outbox = _outbox(config)
    matched = outbox.match_keys(json.loads(outbox.store.get(summary["manifest"]))["keys_written"])
    sent = outbox.send(mailer(config))
    summary["alerts"] = {"matched": matched, "sent": sent}
    print_summary(summary, as_json=args.json)
    if not args.json:
        where = "SMTP" if config.smtp_url else config.outbox_dir
        print(f"\nalerts: {matched.get('new_matches', 0)} new matches, "
              f"{sum(v for k, v in sent.items() if k.endswith('_sent'))} messages sent to {where}")
        print(f"Articles: {store}/articles/site=<id>/date=<day>/<id>.json (raw pages under {store}/raw/)")
        print(f"\nThe demo keeps to its own store, index and sample registry; for the other commands "
              f"(README, \"Start here\") to read them:\n  {demo_exports(store, index)}")
    return 0


def demo_exports(store: str, index: str) -> str:
    """The ``export`` line that points the other commands at the demo's store, index and sites."""
    import shlex

    sites = SAMPLES / "sites.yaml"
    try:
        sites = sites.relative_to(Path.cwd())
    except ValueError:
        pass
    values = {"STEPPEWATCH_STORE": store, "STEPPEWATCH_INDEX_URL": index, "STEPPEWATCH_SITES": str(sites)}
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in values.items())


# -- extract ---------------------------------------------------------------------
PAGE_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml", ".php", ".asp", ".aspx")


def is_page_file(name: str) -> bool:
    """Whether a file found in a directory is a saved page: a page suffix, optionally gzipped (``.html.gz``)."""
    lower = name.lower().removesuffix(".gz")
    return lower.endswith(PAGE_SUFFIXES)


def pages_to_extract(paths: Sequence[str]) -> list[tuple[str, str | None]]:
    """The files that ``extract PATH ...`` reads, in order, each with the error that stops it being read.

    A file is taken whatever its name; a directory is walked for page files (``walk_pages``).
    Checked before any page is extracted, so a mistyped path fails at once (UsageError)
    rather than after a long batch.
    """
    out: list[tuple[str, str | None]] = []
    for given in paths:
        if os.path.isfile(given):
            out.append((given, None))
        elif os.path.isdir(given):
            out.extend(walk_pages(given))
        else:
            raise UsageError(f"{given}: no such file or directory")
    return out


def walk_pages(top: str) -> list[tuple[str, str | None]]:
    """The page files under a directory, recursively, sorted by path, each with None or why it cannot be read.

    A subdirectory that cannot be listed becomes an error entry, so the rest of the batch
    still runs; the directory itself unreadable, or holding no page, is a UsageError.
    """
    found: list[tuple[str, str | None]] = []

    def unlisted(exc: OSError) -> None:
        if exc.filename == top:
            raise UsageError(f"{top}: cannot read directory: {exc.strerror or exc}")
        found.append((str(exc.filename), f"cannot read: {exc.strerror or exc}"))

    for dirpath, _dirs, files in os.walk(top, onerror=unlisted):
        found.extend((os.path.join(dirpath, name), None) for name in files if is_page_file(name))
    if not found:
        raise UsageError(f"{top}: no pages in this directory (looked for {', '.join(PAGE_SUFFIXES)}, "
                         f"also gzipped)")
    return sorted(found, key=lambda entry: Path(entry[0]).parts)


def read_page(path: str) -> bytes:
    """A saved page's bytes, decompressed if its name ends in ``.gz`` (as the store keeps raw pages).

    Raises ValueError saying why the file cannot be read or decompressed.
    """
    try:
        body = Path(path).read_bytes()
        if path.lower().endswith(".gz"):
            body = gzip.decompress(body)
    except OSError as exc:  # includes gzip.BadGzipFile
        raise ValueError(exc.strerror or str(exc)) from None
    except (EOFError, zlib.error) as exc:
        raise ValueError(f"broken gzip data: {exc}") from None
    return body


def extract_file(file: str, url: str | None, site: Site | None) -> dict[str, Any]:
    """Extract one saved page into its output record: the article, a rejection or an error, with its ``file``.

    Never raises: in a batch, one bad file must not stop the others.
    """
    from pipelines.extract import extract_page
    from steppewatch.models import Rejection

    try:
        body = read_page(file)
    except ValueError as exc:
        return {"file": file, "error": f"cannot read: {exc}"}
    url = url or _declared_url(body) or Path(file).resolve().as_uri().replace("file://", "http://localhost")
    try:
        result = extract_page(body, url, site or adhoc_site(url))
    except Exception as exc:  # a bug in the extractor: report it for this page and go on
        return {"file": file, "url": url, "error": f"cannot extract: {type(exc).__name__}: {exc}"}
    if isinstance(result, Rejection):
        return {"file": file, "url": result.url, "rejected": result.reason.value, "detail": result.detail}
    return {"file": file, **result.to_dict()}


def cmd_extract(args: argparse.Namespace, config: Config) -> int:
    """Extract saved pages: one file as readable text, or a batch (several paths, a directory, --json) as JSON lines.

    The exit code is REJECTED if any page was rejected or could not be read, so a script
    can tell a clean batch from one to look at without parsing the output.
    """
    if args.url and (len(args.paths) != 1 or os.path.isdir(args.paths[0])):
        what = f"{len(args.paths)} paths" if len(args.paths) != 1 else f"a directory ({args.paths[0]})"
        raise UsageError(f"--url gives the URL of one page: pass a single file, not {what}")
    pages = pages_to_extract(args.paths)
    site = load_registry(config.sites).get(args.site) if args.site else None
    single = len(args.paths) == 1 and os.path.isfile(args.paths[0]) and not args.json
    code = ExitCode.OK
    try:
        for file, error in pages:
            record = {"file": file, "error": error} if error else extract_file(file, args.url, site)
            if "error" in record or "rejected" in record:
                code = ExitCode.REJECTED
            if not single:
                print(json.dumps(record, ensure_ascii=False), flush=True)
            elif "error" in record:
                print(f"steppewatch: error: {file}: {record['error']}", file=sys.stderr)
            else:
                for key, value in record.items():
                    if key not in ("file", "text"):
                        print(f"{key}: {value}")
                if "text" in record:
                    print("\n" + record["text"])
    except BrokenPipeError:  # the reader stopped early (`| head`): stop quietly, as other filters do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def _declared_url(body: bytes) -> str | None:
    """The page's own canonical URL, so `extract FILE` works without --url."""
    import re

    from steppewatch.urls import is_http_url

    head = body[:65536].decode("latin-1")
    for pattern in (r'<link[^>]+rel=["\']canonical["\'][^>]+href=["\']([^"\']+)',
                    r'<meta[^>]+property=["\']og:url["\'][^>]+content=["\']([^"\']+)'):
        match = re.search(pattern, head, re.IGNORECASE)
        if match and is_http_url(match.group(1)):
            return match.group(1)
    return None


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    from steppewatch.alerts.rules import load_rules
    from steppewatch.index import Index, check_index
    from steppewatch.status import render, status
    from steppewatch.store import open_store

    registry = load_registry(config.sites)
    sites = [s.id for s in registry.enabled()]
    rules = load_rules(config.alerts) if Path(config.alerts).exists() else None
    check_index(config.index)
    report = status(Index(config.index), open_store(config.store), sites, rules)
    print(json.dumps(report, ensure_ascii=False, indent=1) if args.json else render(report, sites))
    return 0


# -- index and store maintenance ----------------------------------------------------------------
def cmd_reindex(args: argparse.Namespace, config: Config) -> int:
    from steppewatch.alerts.outbox import restore_delivered
    from steppewatch.archive import Archive
    from steppewatch.index import Index, check_index
    from steppewatch.records import RecordReader
    from steppewatch.store import open_store

    check_index(config.index)
    store = open_store(config.store)
    index = Index(config.index)
    reader = RecordReader(store)
    counts = Archive(index, store).rebuild(reader)
    # what was sent is known to the store as well: an index rebuilt after a loss sends nothing twice
    counts["alerts_marked_sent"] = restore_delivered(index, store, reader).get("restored", 0)
    reader.report()
    print(json.dumps({"index": index.describe(), **counts, **index.counts()}))
    return 0


def cmd_reprocess(args: argparse.Namespace, config: Config) -> int:
    from steppewatch.index import Index, check_index
    from steppewatch.maintenance import reprocess
    from steppewatch.records import RecordReader
    from steppewatch.store import open_store

    since, until = parse_when(args.since, "since"), parse_when(args.until, "until")
    registry = load_registry(config.sites)
    sites = [registry.get(s).id for s in args.site] if args.site else None
    check_index(config.index)
    store = open_store(config.store)
    reader = RecordReader(store)
    counts = reprocess(store, Index(config.index), registry, since, until, sites, reader)
    reader.report()
    print(json.dumps({**counts, **reader.counts()}, sort_keys=True))
    return 0


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    from steppewatch.maintenance import export_day
    from steppewatch.records import RecordReader
    from steppewatch.store import open_store

    try:
        datetime.strptime(args.date, "%Y-%m-%d")
    except ValueError:
        raise UsageError(f"--date: expected YYYY-MM-DD, got {args.date!r}") from None
    store = open_store(config.store)
    reader = RecordReader(store)
    keys = export_day(store, args.date, args.site or None, reader)
    reader.report()
    for key in keys:
        print(key)
    if not keys:
        print(f"no articles stored for {args.date}", file=sys.stderr)
    return 0


# -- alerts -----------------------------------------------------------------------------------
def _outbox(config: Config, rules: Any = None) -> Any:
    from steppewatch.alerts.outbox import Outbox
    from steppewatch.alerts.rules import load_rules
    from steppewatch.index import Index, check_index
    from steppewatch.store import open_store

    rules = rules if rules is not None else load_rules(config.alerts)
    check_index(config.index)  # unreachable: exit 3 naming it (redacted), before anything is read
    try:
        registry = load_registry(config.sites)
    except RegistryError:
        registry = None
    return Outbox(Index(config.index), open_store(config.store), rules, registry)


def mailer(config: Config) -> Any:
    """The configured mailer: SMTP, or ``.eml`` files in the outbox directory."""
    from steppewatch.alerts.mail import mailer_for

    return mailer_for(config.smtp_url, config.outbox_dir, config.mail_from)


def _window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    """--since and --until (dates or datetimes, UTC unless they carry an offset) as [since, until)."""
    since, until = parse_when(args.since, "since"), parse_when(args.until, "until")
    if until <= since:
        raise UsageError(f"--until ({args.until}) must be after --since ({args.since}): the window is [since, until)")
    return since, until


def cmd_airflow(args: argparse.Namespace, config: Config) -> int:
    from steppewatch.airflow_local import run

    return run(args.home.resolve(), args.port or config.airflow_port, args.data.resolve())


def cmd_alerts(args: argparse.Namespace, config: Config) -> int:
    from steppewatch.alerts.rules import RuleSet, load_rules, query_warnings, unknown_rule_sites
    from steppewatch.layout import manifest_key

    if args.alerts_command == "check":
        rules = load_rules(config.alerts)
        for compiled in rules.rules:
            rule = compiled.rule
            print(f"ok  {rule.name:<30} {rule.mode:<9} -> {', '.join(rule.recipients)}  {rule.query}")
            for warning in query_warnings(rule.query):
                print(f"steppewatch: warning: {rules.path}: rule {rule.name!r}: field query: {warning}",
                      file=sys.stderr)
        # rules limited to sites are checked against the registry (the others need none)
        unknown = unknown_rule_sites(rules, load_registry(config.sites)) if any(
            c.rule.sites for c in rules.rules) else []
        if unknown:
            raise RulesError("\n".join(f"{rules.path}: {problem}" for problem in unknown))
        print(f"{rules.path}: {len(rules.rules)} rules valid")
        return 0
    if args.alerts_command == "preview":
        since, until = _window(args)
        if args.query is not None:
            # a query needs no rules file; when there is one, its aliases apply
            rules = load_rules(config.alerts) if Path(config.alerts).exists() else RuleSet([])
            compiled = rules.adhoc(args.query)
            for warning in query_warnings(args.query):
                print(f"steppewatch: warning: --query: {warning}", file=sys.stderr)
            outbox = _outbox(config, rules)
        else:
            outbox = _outbox(config)
            compiled = outbox.rules.get(args.rule)
        single = outbox.rules.only(compiled)
        shown = 0
        for _key, record in outbox.records_in_window(since, until, args.site):
            for match in single.matches(record, outbox.countries.get(record.get("site", ""))):
                shown += 1
                print(f"{record.get('published') or '-'}  {record['site']}  {record['title']}\n"
                      f"    {record['canonical_url']}\n    {match.snippet_text}\n")
        what = f"query {args.query!r}" if args.query is not None else f"rule {compiled.rule.name!r}"
        print(f"{shown} matching records for {what} published in [{since.isoformat()}, {until.isoformat()}); "
              "nothing sent")
        return 0
    outbox = _outbox(config)
    outbox.index.bind_store(outbox.store)  # match and send trust the index about this store
    if args.alerts_command == "match":
        if (args.send_summary or args.summary_batch) and not args.backfill:
            raise UsageError("--send-summary and --summary-batch only apply with --backfill")
        if args.run:
            manifest = json.loads(outbox.store.get(manifest_key(args.run)))
            counts = outbox.match_keys(manifest["keys_written"], backfill=args.backfill, summary=args.send_summary,
                                       batch=args.summary_batch)
        else:
            if not (args.since and args.until):
                raise UsageError("alerts match needs --run RUN_ID or --since and --until")
            counts = outbox.match_window(*_window(args), args.site, backfill=args.backfill, summary=args.send_summary,
                                         batch=args.summary_batch)
        outbox.reader.report()
        print(json.dumps({**counts, **outbox.reader.counts()}, sort_keys=True))
        return 0
    released = outbox.release(args.release) if args.release else 0
    counts = outbox.send(mailer(config))
    print(json.dumps({**counts, "released": released, "outbox": outbox.status()}, sort_keys=True))
    failed = sum(n for kind, n in counts.items() if kind.endswith("_failed"))
    if failed:
        where = redact(config.smtp_url) if config.smtp_url else config.outbox_dir
        print(f"steppewatch: error: {failed} messages could not be delivered to {where}; they stay pending and "
              f"go with the next `alerts send`", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    return 0


def build_parser() -> argparse.ArgumentParser:
    epilog = "exit codes:\n" + "\n".join(f"  {int(code)}  {text}" for code, text in EXIT_CODES)
    parser = argparse.ArgumentParser(prog="steppewatch", description=__doc__.splitlines()[0], epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sites", help="list the registry; --check validates and probes every source")
    p.add_argument("sites", nargs="*", metavar="SITE", help="only these site ids (default: every site)")
    p.add_argument("--check", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=10.0)
    p.set_defaults(func=cmd_sites)

    p = sub.add_parser("crawl", help="crawl sites over a time window [since, until)")
    p.add_argument("sites", nargs="*", metavar="SITE")
    p.add_argument("--all", action="store_true", help="every enabled site")
    p.add_argument("--since", required=True)
    p.add_argument("--until", required=True)
    p.add_argument("--store", help="store path (default $STEPPEWATCH_STORE or ./data/store)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a Scrapy setting")
    p.add_argument("--reprocess", action="store_true", help="fetch articles again even if already stored")
    p.add_argument("--mode", choices=["backfill", "discover"], default=None,
                   help="backfill (default): store the articles dated in the window; discover (scheduled "
                        "runs): store every new URL found, reading sources back NEWS_LOOKBACK_HOURS")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="crawl in N processes (articles sharded by URL) to use N cores; one run, one manifest")
    p.add_argument("--run-id", help=argparse.SUPPRESS)
    p.add_argument("--progress", action="store_true",
                   help="a progress line on stderr every PROGRESS_INTERVAL seconds (default on a terminal)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_crawl)

    p = sub.add_parser("demo", help="offline full cycle against the bundled sample sites")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("extract", help="extract saved HTML pages: files, or directories walked for pages")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help=f"a file, or a directory walked for {', '.join(PAGE_SUFFIXES)} files (also gzipped)")
    p.add_argument("--url", help="the page's URL (one file only; default its canonical link or og:url)")
    p.add_argument("--site", help="a registry site id, for its extraction hints (applies to every page)")
    p.add_argument("--json", action="store_true", help="JSON lines even for one file (always for a batch)")
    p.set_defaults(func=cmd_extract)
    p = sub.add_parser("alerts", help="keyword alert rules: check, preview, match, send")
    alerts = p.add_subparsers(dest="alerts_command", required=True)
    a = alerts.add_parser("check", help="validate the rules file ($STEPPEWATCH_ALERTS or config/alerts.yaml)")
    window = ("a date or datetime (ISO 8601, UTC unless it has an offset); articles published in "
              "[--since, --until) count, by their publication time (fetch time when undated)")
    a = alerts.add_parser("preview", help="list stored articles a rule or a query would match; sends nothing")
    which = a.add_mutually_exclusive_group(required=True)
    which.add_argument("rule", nargs="?", help="a rule of the rules file")
    which.add_argument("--query", help="try a query instead of a rule (the rules file's aliases apply)")
    a.add_argument("--since", required=True, help=window)
    a.add_argument("--until", required=True, help="end of the window, excluded")
    a.add_argument("--site", action="append", help="only this site (repeatable)")
    a = alerts.add_parser("match", help="record matches of stored articles in the outbox")
    a.add_argument("--run", help="the articles a crawl run wrote (its manifest)")
    a.add_argument("--since", help=window)
    a.add_argument("--until", help="end of the window, excluded")
    a.add_argument("--site", action="append")
    a.add_argument("--backfill", action="store_true", help="record only: no alert e-mail")
    a.add_argument("--send-summary", action="store_true", help="with --backfill: one summary per rule")
    a.add_argument("--summary-batch", metavar="NAME",
                   help="with --backfill: collect summary rows under NAME until `alerts send --release NAME`")
    a = alerts.add_parser("send", help="drain the outbox: send pending alerts and due digests")
    a.add_argument("--release", metavar="NAME", help="first release the summary rows collected under NAME")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("status", help="each site's last run, open incidents, alerts waiting, digests due")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("reindex", help="rebuild the index from the object store alone")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("reprocess", help="re-extract stored raw pages; rewrite records whose text changed")
    p.add_argument("--since", required=True)
    p.add_argument("--until", required=True)
    p.add_argument("--site", action="append", help="only this site (repeatable)")
    p.set_defaults(func=cmd_reprocess)

    p = sub.add_parser("export", help="write Parquet datasets for one day (hive-partitioned)")
    p.add_argument("--date", required=True, help="YYYY-MM-DD")
    p.add_argument("--site", action="append", help="only this site (repeatable)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("airflow", help="run Airflow 3 locally with the project's DAGs; prints the UI and login")
    p.add_argument("--port", type=int, default=None, help="default $STEPPEWATCH_AIRFLOW_PORT or 8080")
    p.add_argument("--home", type=Path, default=Path("data/airflow"), help="AIRFLOW_HOME (default data/airflow)")
    p.add_argument("--data", type=Path, default=Path("data"), help="store, index and outbox default under here")
    p.set_defaults(func=cmd_airflow)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # a usage error exits 2 (argparse), as CONFIG
    config: Config | None = None
    try:
        config = Config.from_env()
        return int(args.func(args, config))
    except (RegistryError, RulesError) as exc:
        print(f"steppewatch: error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    except SteppewatchError as exc:
        again = ""
        if isinstance(exc, Unavailable):  # checked before the command read or fetched anything
            again = "; nothing was fetched: run again when it is back" if args.command == "crawl" else \
                ": run again when it is back"
        print(f"steppewatch: error: {exc}{again}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if not _database_unreachable(exc):
            raise
        # the index went away after the command had checked it
        where = redact(config.index) if config is not None else "the index"
        reason = redact_text(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0])
        print(f"steppewatch: error: index {where} unavailable: {reason}: run again when it is back", file=sys.stderr)
        return ExitCode.UNAVAILABLE


def _database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLAlchemy's lost or refused connection (its module is imported only if used)."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)


if __name__ == "__main__":
    sys.exit(main())
