"""Pipeline throughput side by side with bare trafilatura, on one core and on two.

    .venv/bin/python bench/throughput.py [--pages 2000] [--repeat 3] [--pg postgresql+psycopg://postgres@127.0.0.1/test]

Builds a corpus of article pages from the fixture sites' templates (bench/corpus.py:
English, Russian in cp1251, Kazakh/Russian; realistic body lengths), serves it from
127.0.0.1 with the replay server (pinned to the last core), then, in each repetition:

(a) bare ``trafilatura.bare_extraction`` with the project's settings over the same HTML
    bytes, one process pinned to core 0: pages/s;
(b) the full pipeline, ``steppewatch crawl`` (fetch -> extract -> dedup -> store, local
    store, SQLite index, politeness off) then ``steppewatch alerts match --run``, pinned
    to core 0: pages/s, wall clock including interpreter start-up;
(c) the same with ``crawl --processes 2`` on both cores; its stored records must equal
    (b)'s, field for field, bar fetch times.

Prints medians over the repetitions and the ratios (b)/(a) and (c)/(b), each taken
within one repetition. Targets (issue 6): (b)/(a) >= 0.85, (c)/(b) >= 1.7.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import SINCE, UNTIL, build  # noqa: E402
from pipelines.extract import TRAFILATURA_OPTIONS  # noqa: E402

FAST = ["AUTOTHROTTLE_ENABLED=False", "DOWNLOAD_DELAY=0", "CONCURRENT_REQUESTS=32",
        "CONCURRENT_REQUESTS_PER_DOMAIN=16", "LOG_LEVEL=WARNING"]
SETTINGS = TRAFILATURA_OPTIONS  # what pipelines/extract.py passes to trafilatura


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, {platform.system()}"


def pin(cores: set[int]):  # noqa: ANN201
    def apply() -> None:
        os.sched_setaffinity(0, cores)
    return apply


def bare_worker(listing: Path) -> None:
    """Child process of (a): extract every page once, print pages and seconds."""
    import trafilatura

    pages = [(Path(p["file"]).read_bytes(), p["url"]) for p in json.loads(listing.read_text())]
    for body, url in pages[:5]:  # warm-up: imports, lazy tables
        trafilatura.bare_extraction(body, url=url, **SETTINGS)
    start = time.perf_counter()
    extracted = sum(trafilatura.bare_extraction(body, url=url, **SETTINGS) is not None for body, url in pages)
    print(json.dumps({"pages": len(pages), "extracted": extracted, "seconds": time.perf_counter() - start}))


def run(args: list[str], env: dict[str, str], cores: set[int]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, preexec_fn=pin(cores))
    if proc.returncode not in (0, 4):  # ExitCode.OK, SOURCES_FAILED
        raise RuntimeError(f"{' '.join(args[:6])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return time.perf_counter() - start, proc.stdout


def fresh_pg(admin_url: str, name: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_pg(admin_url: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


def pipeline(work: Path, tag: str, registry: Path, proxy: str, processes: int, cores: set[int],
             pg: str | None = None) -> dict:
    store, index = work / f"store-{tag}", work / f"index-{tag}.sqlite"
    shutil.rmtree(store, ignore_errors=True)
    for path in work.glob(f"index-{tag}.sqlite*"):
        path.unlink()
    index_url = fresh_pg(pg, f"sw_bench_{tag}") if pg else f"sqlite:///{index}"
    env = dict(os.environ, STEPPEWATCH_SITES=str(registry), STEPPEWATCH_PROXY=proxy, STEPPEWATCH_STORE=str(store),
               STEPPEWATCH_INDEX_URL=index_url, STEPPEWATCH_OUTBOX_DIR=str(work / f"outbox-{tag}"))
    cli = [sys.executable, "-m", "steppewatch.cli"]
    crawl = [*cli, "crawl", "--all", "--since", SINCE, "--until", UNTIL, "--json", "--processes", str(processes)]
    for setting in FAST:
        crawl += ["--set", setting]
    crawl_s, out = run(crawl, env, cores)
    summary = json.loads(out)
    match_s, out = run([*cli, "alerts", "match", "--run", summary["run_id"]], env, cores)
    from datetime import datetime

    inner = (datetime.fromisoformat(summary["finished"]) - datetime.fromisoformat(summary["started"])).total_seconds()
    return {"seconds": crawl_s + match_s, "crawl_s": crawl_s, "match_s": match_s, "crawl_inner_s": inner,
            "stored": summary["totals"]["stored"], "matched": json.loads(out), "store": store}


def records(store: Path) -> dict[str, dict]:
    volatile = {"fetched_at", "run_id", "source"}  # fetch provenance: when, which run, which listing
    out = {}
    for path in sorted(store.glob("articles/*/*/*.json")):
        record = json.loads(path.read_text("utf-8"))
        out[str(path.relative_to(store))] = {k: v for k, v in record.items() if k not in volatile}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", metavar="URL", help="also run (d): 2 cores with the index on this PostgreSQL server "
                        "(a SQLAlchemy URL of a database to connect to; a fresh database is created beside it)")
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        return bare_worker(args.bare)

    from steppewatch.replay import ReplayServer

    cores = sorted(os.sched_getaffinity(0))
    one, both = {cores[0]}, set(cores[:2])
    os.sched_setaffinity(0, {cores[-1]})  # the replay server's threads
    work = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    try:
        corpus = build(work / "sites", args.pages)
        listing = work / "pages.json"
        listing.write_text(json.dumps(corpus["pages"]))
        rows = []
        with ReplayServer(work / "sites") as server:
            for rep in range(args.repeat):
                _, out = run([sys.executable, __file__, "--bare", str(listing)], dict(os.environ), one)
                bare = json.loads(out)
                a = bare["pages"] / bare["seconds"]
                b_run = pipeline(work, "one", corpus["registry"], server.url, 1, one)
                c_run = pipeline(work, "two", corpus["registry"], server.url, 2, both)
                same = records(b_run["store"]) == records(c_run["store"])
                if args.pg:
                    d_run = pipeline(work, "pg", corpus["registry"], server.url, 2, both, args.pg)
                    same = same and records(b_run["store"]) == records(d_run["store"])
                b, c = args.pages / b_run["seconds"], args.pages / c_run["seconds"]
                rows.append({"a": a, "b": b, "c": c, "b/a": b / a, "c/b": c / b, "same": same,
                             "stored": (b_run["stored"], c_run["stored"]),
                             "b_crawl": args.pages / b_run["crawl_s"], "c_crawl": args.pages / c_run["crawl_s"],
                             "crawl c/b": b_run["crawl_s"] / c_run["crawl_s"],
                             "b_inner": args.pages / b_run["crawl_inner_s"],
                             "b_match_s": b_run["match_s"], "c_match_s": c_run["match_s"]})
                if args.pg:
                    rows[-1].update(d=args.pages / d_run["seconds"], d_crawl=args.pages / d_run["crawl_s"])
                    rows[-1]["d/b"] = rows[-1]["d"] / b
                    print(f"  (d) 2 cores, PostgreSQL index: {rows[-1]['d']:.1f} p/s "
                          f"(crawl {d_run['crawl_s']:.1f}s + match {d_run['match_s']:.1f}s)", file=sys.stderr)
                print(f"rep {rep + 1}: bare {a:.1f} p/s, pipeline 1 core {b:.1f} p/s "
                      f"(crawl {b_run['crawl_s']:.1f}s + match {b_run['match_s']:.1f}s), 2 cores {c:.1f} p/s "
                      f"(crawl {c_run['crawl_s']:.1f}s + match {c_run['match_s']:.1f}s), "
                      f"stored {b_run['stored']}/{c_run['stored']}, identical output: {same}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"## Throughput ({args.pages} pages, median of {args.repeat})\n")
    print(f"Machine: {machine()}  \nCommand: `.venv/bin/python bench/throughput.py --pages {args.pages} "
          f"--repeat {args.repeat}{' --pg ' + args.pg if args.pg else ''}`\n")
    print("| measure | pages/s | ratio | target |\n|---|---:|---:|---|")
    print(f"| (a) bare trafilatura, project settings, 1 core | {med('a'):.1f} | | |")
    print(f"| (b) crawl → extract → dedup → store → match, 1 core | {med('b'):.1f} | (b)/(a) = {med('b/a'):.2f} "
          f"| ≥ 0.85 |")
    print(f"| (c) the same, `--processes 2`, 2 cores | {med('c'):.1f} | (c)/(b) = {med('c/b'):.2f} | ≥ 1.7 |")
    if args.pg:
        print(f"| (d) the same, 2 cores, index on PostgreSQL | {med('d'):.1f} | (d)/(b) = {med('d/b'):.2f} | |")
    print(f"| crawl step alone, 1 core / 2 cores | {med('b_crawl'):.1f} / {med('c_crawl'):.1f} "
          f"| {med('crawl c/b'):.2f} | |")
    print(f"| crawl step alone without interpreter start-up and imports, 1 core | {med('b_inner'):.1f} "
          f"| /(a) = {med('b_inner') / med('a'):.2f} | |")
    print(f"| alert match step (single process), 1-core run / 2-core run | {med('b_match_s'):.1f} s / "
          f"{med('c_match_s'):.1f} s | | |")
    compared = "(c) and (d)" if args.pg else "(c)"
    print(f"\nStored output of {compared} identical to (b) in every repetition: {all(r['same'] for r in rows)}; "
          f"stored {rows[0]['stored'][0]} of {args.pages} pages.")
    print("Per repetition: " + "; ".join(f"b/a {r['b/a']:.2f}, c/b {r['c/b']:.2f}" for r in rows) + ".")


if __name__ == "__main__":
    main()
