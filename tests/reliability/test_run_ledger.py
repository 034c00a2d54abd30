"""A crawl an operator can read: the run ledger's summary, progress and log volume.

Three sites over real HTTP through the replay server: one with new articles, one whose
every source fails, one whose feed lists nothing. The summary must tell them apart
("N new", "nothing reachable", "nothing found"), and on the next run "nothing new, all
already stored" — in the text summary as well as in ``--json``. A crawl of the bundled
registry with the network gone (a proxy on a closed port) must log each failing source
in one WARNING line, with no traceback. ``--progress`` prints progress lines.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steppewatch.errors import ExitCode
from steppewatch.replay import ReplayServer
from tests.reliability.helpers import FAST, ROOT, SINCE, UNTIL, SiteSpec, crawl, write_registry, write_site


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, ReplayServer]]:
    base = tmp_path_factory.mktemp("ledger")
    entries = [
        write_site(base / "sites", SiteSpec("fresh.test", "fresh", articles=4)),
        write_site(base / "sites", SiteSpec("gone.test", "gone", articles=2, feed_route={"fault": "reset"},
                                            registry_extra={"sitemaps": [{"url": "http://gone.test/sitemap.xml"}]})),
        write_site(base / "sites", SiteSpec("quiet.test", "quiet", articles=0)),
    ]
    registry = write_registry(base / "sites.yaml", entries)
    with ReplayServer(base / "sites") as server:
        yield base, registry, server


def _text_crawl(base: Path, registry: Path, server: ReplayServer, *flags: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "steppewatch.cli", "crawl", "--all", "--since", SINCE, "--until", UNTIL, *flags]
    for setting in FAST:
        args += ["--set", setting]
    env = dict(os.environ, STEPPEWATCH_SITES=str(registry), STEPPEWATCH_STORE=str(base / "store"),
               STEPPEWATCH_INDEX_URL=f"sqlite:///{base}/index.sqlite", STEPPEWATCH_PROXY=server.url)
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_summary_tells_new_nothing_new_nothing_found_and_nothing_reachable_apart(
        sites: tuple[Path, Path, ReplayServer]) -> None:
    base, registry, server = sites
    first = crawl(registry, str(base / "store"), f"sqlite:///{base}/index.sqlite", server.url)
    assert first.returncode == 0, first.stderr[-3000:]
    s = first.summary
    assert s is not None
    fresh, gone, quiet = s["sites"]["fresh"], s["sites"]["gone"], s["sites"]["quiet"]
    assert (fresh["state"], fresh["verdict"]) == ("new", "4 new")
    assert gone["state"] == "unreachable" and gone["all_sources_failed"]
    assert gone["verdict"].startswith("nothing reachable (every source failed: ")
    assert "connection_lost 1" in gone["verdict"] and "http_404 1" in gone["verdict"]
    assert quiet["state"] == "nothing_found" and quiet["verdict"].startswith("nothing found")
    # the run's errors count the failing sources (before: errors 0 whatever failed)
    assert s["totals"]["source_errors"] == {"connection_lost": 1, "http_404": 1}
    assert s["totals"]["sites_all_sources_failed"] == ["gone"]
    assert s["totals"]["sites_by_state"] == {"new": ["fresh"], "nothing_found": ["quiet"], "unreachable": ["gone"]}
    assert s["totals"]["verdict"].startswith("4 new from 1 of 3 site(s)")

    second = _text_crawl(base, registry, server)  # the text summary, as an operator reads it
    assert second.returncode == 0, second.stderr[-3000:]
    out = second.stdout
    fresh_row = next(line for line in out.splitlines() if line.startswith("fresh "))
    assert "already_stored=4" in fresh_row  # the table: skips by reason
    assert re.search(r"^  fresh +nothing new \(4 found: 4 already stored\)$", out, re.M)  # the verdicts
    gone_row = next(line for line in out.splitlines() if line.startswith("gone "))
    assert "connection_lost=1" in gone_row and "http_404=1" in gone_row  # errors by kind
    assert re.search(r"^  gone +nothing reachable \(every source failed: connection_lost 1, http_404 1\)$", out, re.M)
    assert re.search(r"^  quiet +nothing found", out, re.M)
    assert re.search(r"^total: .*errors 2 \(source connection_lost=1, source http_404=1\)", out, re.M)
    assert re.search(r"^total: .*skipped 4 \(already_stored=4\)", out, re.M)
    assert "http://gone.test/feed.xml" in out and "http://gone.test/sitemap.xml" in out  # sources with errors
    assert re.search(r"^verdict: nothing new \(4 found\); nothing found on 1 site\(s\); nothing reachable on 1 "
                     r"site\(s\); 2 error\(s\)$", out, re.M)


def test_a_window_that_excludes_every_article_says_outside_the_window(sites: tuple[Path, Path, ReplayServer],
                                                                       tmp_path: Path) -> None:
    _, registry, server = sites
    proc = subprocess.run(
        [sys.executable, "-m", "steppewatch.cli", "crawl", "fresh", "--since", "2024-11-01", "--until", "2024-11-08",
         "--json", *(a for s in FAST for a in ("--set", s))],
        env=dict(os.environ, STEPPEWATCH_SITES=str(registry), STEPPEWATCH_STORE=str(tmp_path / "store"),
                 STEPPEWATCH_INDEX_URL=f"sqlite:///{tmp_path}/index.sqlite", STEPPEWATCH_PROXY=server.url),
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(proc.stdout)["sites"]["fresh"]
    assert fresh["state"] == "nothing_new"
    assert fresh["verdict"] == "nothing new (4 found: 4 outside the window)"


def test_progress_lines_appear_with_progress(sites: tuple[Path, Path, ReplayServer], tmp_path: Path) -> None:
    _, registry, server = sites
    proc = subprocess.run(
        [sys.executable, "-m", "steppewatch.cli", "crawl", "--all", "--since", SINCE, "--until", UNTIL, "--json",
         "--progress", "--set", "PROGRESS_INTERVAL=0.05", *(a for s in FAST for a in ("--set", s))],
        env=dict(os.environ, STEPPEWATCH_SITES=str(registry), STEPPEWATCH_STORE=str(tmp_path / "store"),
                 STEPPEWATCH_INDEX_URL=f"sqlite:///{tmp_path}/index.sqlite", STEPPEWATCH_PROXY=server.url),
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("progress: ")]
    assert lines, proc.stderr[-3000:]
    last = lines[-1]  # the closing line: every site done, what was fetched and stored
    assert re.match(r"progress: \d+ pages fetched \([\d.]+/s\), 4 stored, 2 errors, sites 3/3 done, finished in", last)
    assert json.loads(proc.stdout)["totals"]["stored"] == 4  # stdout is still the summary alone


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_offline_crawl_of_the_bundled_registry_logs_each_failing_source_once(tmp_path: Path) -> None:
    """Before: 10,323 log lines and 118 tracebacks for 133 failing sources, and ``errors 0``."""
    registry = ROOT / "config" / "sites.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "steppewatch.cli", "crawl", "--all", "--since", "2024-12-01", "--until", "2024-12-02",
         "--json", *(a for s in FAST for a in ("--set", s))],
        env=dict(os.environ, STEPPEWATCH_SITES=str(registry), STEPPEWATCH_STORE=str(tmp_path / "store"),
                 STEPPEWATCH_INDEX_URL=f"sqlite:///{tmp_path}/index.sqlite",
                 STEPPEWATCH_PROXY=f"http://127.0.0.1:{_closed_port()}"),
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == ExitCode.SOURCES_FAILED, proc.stderr[-3000:]
    summary: dict[str, Any] = json.loads(proc.stdout)
    failing = [src["url"] for s in summary["sites"].values() for src in s["sources"]]
    assert failing and all(src["error"] for s in summary["sites"].values() for src in s["sources"])
    assert sum(summary["totals"]["source_errors"].values()) == len(failing)
    assert summary["totals"]["verdict"].startswith("nothing reachable: every source of every site failed")
    log = proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr
    assert not [line for line in log if " ERROR: " in line or " CRITICAL: " in line]
    for url in failing:  # each failing source: one WARNING naming it and the error's kind
        named = [line for line in log if f"source {url} failed: " in line]
        assert len(named) == 1 and " WARNING: " in named[0] and named[0].endswith("connection_refused"), named
    # a few lines for the process, then at most two per failing source (its own, its robots.txt's)
    assert len(log) <= 20 + 2 * len(failing), len(log)
