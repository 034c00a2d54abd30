"""The golden expectations of the fixture sites, checked on extract_page called directly.

The crawl tests (test_crawl_fixtures.py) check the same goldens through Scrapy; this one
calls the extraction function on each page as the replay server serves it, without a
crawler, so an extraction failure names the page and the expectation at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from pipelines.extract import extract_page
from steppewatch.models import Article, Rejection, RejectReason
from steppewatch.registry import load_registry
from steppewatch.replay import ReplayServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = {p.stem: yaml.safe_load(p.read_text("utf-8")) for p in sorted((FIXTURES / "golden").glob("*.yaml"))}
REGISTRY = load_registry(FIXTURES / "sites.yaml")
SERVER = ReplayServer(FIXTURES / "sites")
ARTICLES = [(site, a) for site, g in GOLDEN.items() for a in g["articles"]]
# rejections the extraction decides (robots and off-domain pages are never fetched)
REJECTED = [(site, r) for site, g in GOLDEN.items() for r in g.get("rejected", [])
            if r["reason"] in {reason.value for reason in RejectReason}]


def _extract(site: str, url: str) -> Article | Rejection:
    status, headers, body = SERVER.page(url)
    return extract_page(body, url, REGISTRY.get(site), status=status, content_type=headers.get("Content-Type"))


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@pytest.mark.parametrize(("site", "want"), ARTICLES, ids=[a["url"] for _, a in ARTICLES])
def test_golden_article(site: str, want: dict) -> None:
    got = _extract(site, want["url"])
    assert isinstance(got, Article), got
    assert got.title == want["title"]
    assert got.language == want["language"]
    if want.get("authors"):
        assert got.authors == want["authors"]
    # a page without a date of its own is dated by its feed or sitemap, which only a crawl sees
    if want.get("published") and want.get("date_source") not in ("feed", "sitemap", "listing"):
        assert got.published and _utc(got.published) == _utc(want["published"])
    for line in want.get("must_contain", []):
        assert line in got.text, f"body incomplete, missing {line[:60]!r}"
    lines = set(got.text.splitlines())
    golden = GOLDEN[site]
    boilerplate = set(want.get("must_not_contain", [])) | set(golden.get("boilerplate", []))
    # short labels ("Turkmenistan" in a nav bar) may occur in prose: they must not be a line
    leaked = sorted(b for b in boilerplate if b in lines or (len(b) >= 25 and b in got.text))
    assert not leaked, leaked[:5]
    assert not lines & (set(golden.get("sidebar_titles") or []) - {got.title})


@pytest.mark.parametrize(("site", "want"), REJECTED, ids=[r["url"] for _, r in REJECTED])
def test_golden_rejection(site: str, want: dict) -> None:
    got = _extract(site, want["url"])
    assert isinstance(got, Rejection), f"stored: {getattr(got, 'title', got)!r}"
    # a search results page may be told as a search or as a listing: both are followed
    allowed = {want["reason"]} | ({"listing", "search"} if want["reason"] in ("listing", "search") else set())
    assert got.reason.value in allowed, got
