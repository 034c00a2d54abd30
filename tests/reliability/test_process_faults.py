"""A crawl process killed outright (SIGKILL) in the middle of a run, and two runs of one
site at once: re-running the interval loses nothing and duplicates nothing. Processes
opening a new SQLite index at the same moment all get it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steppewatch.index import Index, check_index
from steppewatch.replay import ReplayServer
from tests.reliability.helpers import (
    FAST,
    ROOT,
    SINCE,
    UNTIL,
    SiteSpec,
    assert_store_and_index_agree,
    crawl,
    stored_count,
    write_registry,
    write_site,
)

ARTICLES = 16


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict]:
    entry = write_site(tmp_path / "sites", SiteSpec("killed.test", "killed", articles=ARTICLES))
    registry = write_registry(tmp_path / "sites.yaml", [entry])
    with ReplayServer(tmp_path / "sites") as server:
        yield {"registry": registry, "proxy": server.url, "store": str(tmp_path / "store"),
               "index": f"sqlite:///{tmp_path}/index.sqlite", "server": server}


def start(site: dict, *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "steppewatch.cli", "crawl", "--all", "--since", SINCE, "--until", UNTIL, "--json"]
    for setting in [*FAST, *extra]:
        args += ["--set", setting]
    env = dict(os.environ, STEPPEWATCH_SITES=str(site["registry"]), STEPPEWATCH_STORE=site["store"],
               STEPPEWATCH_INDEX_URL=site["index"], STEPPEWATCH_PROXY=site["proxy"])
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_crawl_killed_midway_then_rerun_loses_nothing_and_duplicates_nothing(site: dict) -> None:
    proc = start(site, "DOWNLOAD_DELAY=0.3", "CONCURRENT_REQUESTS_PER_DOMAIN=1")
    deadline = time.monotonic() + 120
    while stored_count(site["index"]) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    partial = stored_count(site["index"])
    assert 5 <= partial < ARTICLES
    assert assert_store_and_index_agree(site["store"], site["index"])["records"] == partial
    rerun = crawl(site["registry"], site["store"], site["index"], site["proxy"])
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.summary["totals"]["stored"] == ARTICLES - partial
    assert rerun.summary["sites"]["killed"]["skipped"].get("already_stored") == partial, "stored ones not refetched"
    assert assert_store_and_index_agree(site["store"], site["index"])["records"] == ARTICLES


def test_two_runs_of_one_site_overlapping_store_each_article_once(site: dict) -> None:
    first = start(site, "DOWNLOAD_DELAY=0.1")
    second = start(site, "DOWNLOAD_DELAY=0.1")
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == second.returncode == 0, [err[-2000:] for _, err in outs]
    assert assert_store_and_index_agree(site["store"], site["index"])["records"] == ARTICLES
    import json

    totals = [json.loads(out)["totals"] for out, _ in outs]
    assert sum(t["stored"] for t in totals) == ARTICLES, totals


def _open_fresh(barrier: multiprocessing.synchronize.Barrier, urls: list[str], errors: multiprocessing.Queue) -> None:
    failed = []
    for url in urls:
        barrier.wait()
        try:
            check_index(url)  # what `steppewatch crawl` does first
            Index(url).counts()
        except Exception as exc:  # noqa: BLE001 — every failure is reported
            failed.append(f"{url}: {type(exc).__name__}: {exc}")
    errors.put(failed)


def test_processes_opening_a_new_sqlite_index_at_once_all_succeed(tmp_path: Path) -> None:
    # switching a new file to WAL once failed at once with "database is locked" when another
    # process was opening it too (about 1 round in 15 with 3 processes on a busy machine)
    ctx = multiprocessing.get_context("fork")
    urls = [f"sqlite:///{tmp_path}/index-{n}.sqlite" for n in range(40)]
    barrier, errors = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_open_fresh, args=(barrier, urls, errors)) for _ in range(3)]
    for proc in procs:
        proc.start()
    failed = [line for _ in procs for line in errors.get(timeout=300)]
    for proc in procs:
        proc.join(timeout=60)
    assert failed == []
    assert all(proc.exitcode == 0 for proc in procs)
