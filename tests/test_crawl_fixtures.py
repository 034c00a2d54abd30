"""Crawl the sample sites over real HTTP and compare with the golden expectations.

One full-window crawl (run once per session through the CLI in a subprocess, so it has
its own Twisted reactor) feeds the golden tests; further crawls check windows, faults
and re-runs. The replay server logs every request, so tests can see what was fetched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from steppewatch.replay import ReplayServer

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
GOLDEN = {p.stem: yaml.safe_load(p.read_text("utf-8")) for p in sorted((FIXTURES / "golden").glob("*.yaml"))}
SINCE, UNTIL = "2024-12-01T00:00:00Z", "2024-12-08T00:00:00Z"
FAST = ["AUTOTHROTTLE_ENABLED=false", "DOWNLOAD_DELAY=0", "RETRY_BACKOFF_BASE=0.05", "LOG_LEVEL=INFO"]


@dataclass
class Run:
    summary: dict[str, Any]
    store: Path
    server: ReplayServer
    stderr: str

    def records(self, site: str | None = None) -> list[dict[str, Any]]:
        pattern = f"articles/site={site or '*'}/date=*/*.json"
        return [json.loads(p.read_text("utf-8")) for p in sorted(self.store.glob(pattern))]


def crawl(server: ReplayServer, store: Path, since: str = SINCE, until: str = UNTIL,
          sites: list[str] | None = None, extra: list[str] | None = None) -> Run:
    env = dict(os.environ, STEPPEWATCH_SITES=str(FIXTURES / "sites.yaml"), STEPPEWATCH_PROXY=server.url)
    args = [sys.executable, "-m", "steppewatch.cli", "crawl", *(sites or ["--all"]), "--since", since,
            "--until", until, "--store", str(store), "--json"]
    for setting in FAST + (extra or []):
        args += ["--set", setting]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return Run(json.loads(proc.stdout), store, server, proc.stderr)


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(FIXTURES / "sites") as srv:
        yield srv


@pytest.fixture(scope="module")
def full(server: ReplayServer, tmp_path_factory: pytest.TempPathFactory) -> Run:
    server.reset()
    return crawl(server, tmp_path_factory.mktemp("store"))


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@pytest.mark.parametrize("site", sorted(GOLDEN))
def test_golden_articles(full: Run, site: str) -> None:
    golden = GOLDEN[site]
    records = {r["canonical_url"]: r for r in full.records(site)}
    expected = {a["url"]: a for a in golden["articles"]}
    assert sorted(records) == sorted(expected)
    for url, want in expected.items():
        got = records[url]
        assert got["title"] == want["title"], url
        if want.get("published"):
            assert _utc(got["published"]) == _utc(want["published"]), url
        if want.get("date_source"):
            assert got["date_source"] == want["date_source"], url
        assert got["language"] == want["language"], url
        if want.get("authors"):
            assert got["authors"] == want["authors"], url
        for line in want.get("must_contain", []):
            assert line in got["text"], f"{url}: body incomplete, missing {line[:60]!r}"
        for line in want.get("must_not_contain", []):
            assert line not in got["text"], f"{url}: boilerplate {line[:60]!r} in text"
        assert got["site"] == site and got["id"] and len(got["content_hash"]) == 64
        assert got["extractor"]["name"] == "trafilatura"


def test_no_boilerplate_line_in_any_stored_text(full: Run) -> None:
    boilerplate = {line for g in GOLDEN.values() for line in g.get("boilerplate", [])}
    sidebar_titles = {line for g in GOLDEN.values() for line in g.get("sidebar_titles", [])}
    assert boilerplate, "the goldens list the fixtures' boilerplate"
    records = full.records()
    assert len(records) >= 10
    for record in records:
        lines = set(record["text"].splitlines())
        leaked = sorted(b for b in boilerplate if b in record["text"])
        assert not leaked, f"{record['canonical_url']}: {leaked[:5]}"
        # a sidebar headline may be another article's title, never a line of this text
        assert not (lines & (sidebar_titles - {record["title"]})), record["canonical_url"]


def test_out_of_window_and_rejections_are_counted(full: Run) -> None:
    stored = {r["canonical_url"] for r in full.records()}
    for golden in GOLDEN.values():
        for url in golden.get("out_of_window", []):
            assert url not in stored, url
        for rejected in golden.get("rejected", []):
            assert rejected["url"] not in stored
    totals = full.summary["totals"]
    assert totals["out_of_window"] >= 1
    assert sum(totals["rejected"].values()) >= sum(len(g.get("rejected", [])) for g in GOLDEN.values())
    assert totals["stored"] == len(stored)


def test_every_request_is_polite_and_stays_home(full: Run) -> None:
    hits = full.server.hits
    assert hits
    assert all("(+http" in h.user_agent for h in hits), "UA carries a contact URL"
    hosts = {h.host for h in hits}
    assert hosts <= set(full.server.hosts), f"left the allowed domains: {hosts - set(full.server.hosts)}"
    assert not [h for h in hits if h.path.startswith("/private/")], "robots.txt Disallow obeyed"
    assert not [h for h in hits if "print=" in h.path], "robots.txt wildcard rule obeyed"
    for host in full.server.hosts:
        assert full.server.count(host, r"^/robots\.txt$") >= 1


def test_window_stores_exactly_the_in_window_articles(server: ReplayServer, tmp_path: Path) -> None:
    since, until = "2024-12-03T00:00:00Z", "2024-12-05T00:00:00Z"
    run = crawl(server, tmp_path / "store", since, until)
    lo, hi = _utc(since), _utc(until)
    expected = {
        a["url"] for g in GOLDEN.values() for a in g["articles"]
        if a.get("published") and lo <= _utc(a["published"]) < hi
    }
    got = {r["canonical_url"] for r in run.records() if r["date_source"] == "page"}
    assert got == expected
    for record in run.records():
        assert lo <= _utc(record["published"]) < hi
    assert run.summary["totals"]["out_of_window"] >= 1 or run.summary["sites"]


def test_summary_reports_sources_and_faults(full: Run) -> None:
    sites = full.summary["sites"]
    assert set(sites) == set(GOLDEN)
    for site, s in sites.items():
        assert s["stored"] == len(GOLDEN[site]["articles"])
        assert s["sources"], site
        for src in s["sources"]:
            assert {"url", "kind", "status", "items", "error"} <= set(src)
    errors = {k: v for s in sites.values() for k, v in s["errors"].items()}
    assert errors.get("http_404", 0) >= 1
    html_feeds = [src for s in sites.values() for src in s["sources"] if src["format"] == "html"]
    assert html_feeds and all("HTML" in src["error"] for src in html_feeds)
    assert full.summary["totals"]["sites_all_sources_failed"] == []
