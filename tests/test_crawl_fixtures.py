"""Crawl the sample sites over real HTTP and compare with the golden expectations.

One full-window crawl (run once per session through the CLI in a subprocess, so it has
its own Twisted reactor) feeds the golden tests; further crawls check windows, faults
and re-runs. The replay server logs every request, so tests can see what was fetched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from steppewatch.errors import ExitCode
from steppewatch.replay import Hit, ReplayServer

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
    hits: list[Hit]

    def count(self, host: str, path_re: str) -> int:
        return sum(1 for h in self.hits if h.host == host and re.search(path_re, h.path))

    def records(self, site: str | None = None, kind: str = "articles") -> list[dict[str, Any]]:
        pattern = f"{kind}/site={site or '*'}/date=*/*.json"
        return [json.loads(p.read_text("utf-8")) for p in sorted(self.store.glob(pattern))]

    def aliases(self, site: str | None = None) -> list[dict[str, Any]]:
        return self.records(site, kind="aliases")


def crawl(server: ReplayServer, store: Path, since: str = SINCE, until: str = UNTIL,
          sites: list[str] | None = None, extra: list[str] | None = None, index: str | None = None,
          flags: list[str] | None = None) -> Run:
    env = dict(os.environ, STEPPEWATCH_SITES=str(FIXTURES / "sites.yaml"), STEPPEWATCH_PROXY=server.url,
               STEPPEWATCH_INDEX_URL=index or f"sqlite:///{store}.index.sqlite")
    args = [sys.executable, "-m", "steppewatch.cli", "crawl", *(sites or ["--all"]), "--since", since,
            "--until", until, "--store", str(store), "--json", *(flags or [])]
    for setting in FAST + (extra or []):
        args += ["--set", setting]
    before = len(server.hits)
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode in (ExitCode.OK, ExitCode.SOURCES_FAILED), proc.stderr[-3000:]
    return Run(json.loads(proc.stdout), store, server, proc.stderr, list(server.hits[before:]))


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(FIXTURES / "sites") as srv:
        yield srv


@pytest.fixture(scope="module")
def full(server: ReplayServer, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return crawl(server, tmp_path_factory.mktemp("store"))


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@pytest.mark.parametrize("site", sorted(GOLDEN))
def test_golden_articles(full: Run, site: str) -> None:
    golden = GOLDEN[site]
    records = {r["canonical_url"]: r for r in full.records(site)}
    aliases = {r["canonical_url"]: r for r in full.aliases(site)}
    by_id = {r["id"]: r for r in full.records()}
    expected = {a["url"]: a for a in golden["articles"]}
    assert sorted([*records, *aliases]) == sorted(expected)
    for url, want in expected.items():
        if url in aliases:  # the same text is stored once, under the other site's record
            alias = aliases[url]
            assert alias["title"] == want["title"] and alias["language"] == want["language"]
            assert _utc(alias["published"]) == _utc(want["published"]), url
            target = by_id[alias["alias_of"]]
            assert target["content_hash"] == alias["content_hash"] and target["site"] != site
            assert all(line in target["text"] for line in want.get("must_contain", []))
            continue
        got = records[url]
        assert got["title"] == want["title"], url
        if want.get("published"):
            assert _utc(got["published"]) == _utc(want["published"]), url
        # the golden may say which part of the page dated it; the record says "page"
        want_source = want.get("date_source") or "page"
        assert got["date_source"] == (want_source if want_source in ("feed", "sitemap", "listing") else "page"), url
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
        # short labels ("Turkmenistan" in a nav bar) may occur in prose: they must not be a line
        leaked = sorted(b for b in boilerplate if b in lines or (len(b) >= 25 and b in record["text"]))
        assert not leaked, f"{record['canonical_url']}: {leaked[:5]}"
        # a sidebar headline may be another article's title, never a line of this text
        assert not (lines & (sidebar_titles - {record["title"]})), record["canonical_url"]


def test_out_of_window_and_rejections_are_counted(full: Run) -> None:
    stored = {r["canonical_url"] for r in full.records() + full.aliases()}
    for golden in GOLDEN.values():
        for url in golden.get("out_of_window", []):
            assert url not in stored, url
        for rejected in golden.get("rejected", []):
            assert rejected["url"] not in stored
    totals = full.summary["totals"]
    # counted after extraction, or before fetching when the source's date already said so
    skipped = sum(s["skipped"].get("source_date_out_of_window", 0) for s in full.summary["sites"].values())
    assert totals["out_of_window"] >= 1
    assert totals["out_of_window"] + skipped >= sum(len(g.get("out_of_window", [])) for g in GOLDEN.values())
    expected: dict[str, int] = {}
    for golden in GOLDEN.values():
        for rejected in golden.get("rejected", []):
            # search results pages are listings too; error pages usually arrive as HTTP errors
            reason = {"search": "listing"}.get(rejected["reason"], rejected["reason"])
            expected[reason] = expected.get(reason, 0) + 1
    got = dict(totals["rejected"])
    got["listing"] = got.get("listing", 0) + got.pop("search", 0)
    http_errors = sum(v for k, v in totals["errors"].items() if k.startswith("http_4"))
    for reason, count in expected.items():
        have = got.get(reason, 0) + (http_errors if reason == "error_page" else 0)
        assert have >= count, (reason, got, totals["errors"])
    # each article was committed once as new: a record, or an alias of the earlier publication
    # (when the copy came first, the original takes the record over and the copy becomes the alias)
    assert totals["outcome"].get("stored", 0) + totals["outcome"].get("alias", 0) == len(stored)


def test_every_request_is_polite_and_stays_home(full: Run) -> None:
    hits = full.hits
    assert hits
    assert all("(+http" in h.user_agent for h in hits), "UA carries a contact URL"
    hosts = {h.host for h in hits}
    assert hosts <= set(full.server.hosts), f"left the allowed domains: {hosts - set(full.server.hosts)}"
    assert not [h for h in hits if h.path.startswith("/private/")], "robots.txt Disallow obeyed"
    assert not [h for h in hits if "print=" in h.path], "robots.txt wildcard rule obeyed"
    for host in full.server.hosts:
        assert full.count(host, r"^/robots\.txt$") >= 1


def test_window_stores_exactly_the_in_window_articles(server: ReplayServer, tmp_path: Path) -> None:
    since, until = "2024-12-03T00:00:00Z", "2024-12-05T00:00:00Z"
    run = crawl(server, tmp_path / "store", since, until)
    lo, hi = _utc(since), _utc(until)
    expected = {
        a["url"] for g in GOLDEN.values() for a in g["articles"]
        if a.get("published") and lo <= _utc(a["published"]) < hi
    }
    got = {r["canonical_url"] for r in run.records() + run.aliases() if r["date_source"] == "page"}
    # a backfill owns what is dated in its window, widened by the date tolerance at the
    # edges (steppewatch/windows.py): nothing in the window is left out, nothing far is taken
    assert expected <= got
    tolerance = timedelta(hours=14)
    for record in run.records() + run.aliases():
        assert lo - tolerance <= _utc(record["published"]) < hi + tolerance, record["canonical_url"]
    assert run.summary["totals"]["out_of_window"] >= 1


def test_summary_reports_sources_and_faults(full: Run) -> None:
    sites = full.summary["sites"]
    assert set(sites) == set(GOLDEN)
    for site, s in sites.items():
        assert s["stored"] + s["outcome"].get("alias", 0) == len(GOLDEN[site]["articles"])
        assert s["sources"], site
        for src in s["sources"]:
            assert {"url", "kind", "status", "items", "error"} <= set(src)
    errors = {k: v for s in sites.values() for k, v in s["errors"].items()}
    assert errors.get("http_404", 0) >= 1
    html_feeds = [src for s in sites.values() for src in s["sources"] if src["format"] == "html"]
    assert html_feeds and all("HTML" in src["error"] for src in html_feeds)
    assert full.summary["totals"]["sites_all_sources_failed"] == []


def _path(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


FAULTS = {f["kind"]: f for g in GOLDEN.values() for f in g.get("faults", [])}


def test_faults_are_retried_redirected_or_reported(full: Run) -> None:
    stored = {r["canonical_url"] for r in full.records() + full.aliases()}
    for kind in ("server_error_then_ok", "rate_limited_then_ok"):
        url = FAULTS[kind]["url"]
        assert url in stored, kind
        assert full.count("silkroad-review.test", "^" + _path(url).replace("?", r"\?") + "$") == 2, kind
    silkroad = full.summary["sites"]["silkroad_review"]
    assert silkroad["retries"].get("retry_after_honoured", 0) >= 1
    assert silkroad["rejected"].get("not_html", 0) >= 1  # the PDF in the feed
    assert silkroad["errors"].get("http_404", 0) >= 1
    sources = {s["url"]: s for site in full.summary["sites"].values() for s in site["sources"]}
    for fault in (f for g in GOLDEN.values() for f in g["faults"] if f["kind"] == "feed_is_html"):
        src = sources[fault["url"]]
        assert src["status"] == 200 and src["error"] == "HTML page where a feed was expected"
    gz = sources[FAULTS["gzip_sitemap"]["url"]]
    assert gz["error"] is None and gz["items"] > 0 and gz["format"] == "urlset"


def test_url_variants_are_stored_once_under_the_canonical_url(full: Run) -> None:
    records = full.records() + full.aliases()
    canon = [r["canonical_url"] for r in records]
    assert len(canon) == len(set(canon))
    for alias in (a for g in GOLDEN.values() for a in g.get("aliases", [])):
        assert canon.count(alias["canonical"]) == 1, alias
        assert "utm_" not in alias["canonical"]
    assert not [h for h in full.hits if "utm_" in h.path]


def test_disallowed_and_offsite_links_are_never_requested(full: Run) -> None:
    for item in (n for g in GOLDEN.values() for n in g.get("not_fetched", [])):
        from urllib.parse import urlsplit

        host = urlsplit(item["url"]).hostname
        assert not [h for h in full.hits if h.host == host and h.path == _path(item["url"])], item


def test_discovery_follows_the_window(server: ReplayServer, tmp_path: Path) -> None:
    run = crawl(server, tmp_path / "store", "2024-12-03T00:00:00Z", "2024-12-05T00:00:00Z")
    dated_sitemaps = sorted(h.path for h in run.hits if h.host == "dala-news.test" and "date_start=" in h.path)
    assert dated_sitemaps == [
        "/sitemap_article.xml?date_start=20241203&date_end=20241203",
        "/sitemap_article.xml?date_start=20241204&date_end=20241204",
    ]
    archives = sorted(h.path for h in run.hits if h.host == "kazinfo.test" and "/ru/archive" in h.path)
    assert archives == ["/ru/archive?date=2024-12-03", "/ru/archive?date=2024-12-04"]
    # a later window: listing page 1 holds only older entries, so page 2 is never asked for
    later = crawl(server, tmp_path / "later", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", sites=["steppe_times"])
    assert later.count("steppe-times.test", r"^/news/page/1/$") == 1
    assert later.count("steppe-times.test", r"^/news/page/2/$") == 0
    assert later.summary["totals"]["stored"] == 0
    article_hits = [h for h in later.hits if h.path.count("/") >= 2 and not h.path.startswith(("/news/", "/sitemap", "/feed"))]
    assert article_hits == [], "no article page fetched when every source date is outside the window"
