"""Sites that misbehave, for real over HTTP: one crawl of a site whose feed lists good
articles beside every kind of broken response, and of a second feed that answers 503.

The crawl must complete (exit 0), count each fault by kind for the source that listed
the page, retry what is worth retrying, and store the good articles and nothing else.

Then discovery that misbehaves, four sites in one crawl: sitemap indexes that list
themselves or each other, an index over the child-sitemap cap, URLs over Scrapy's length
limit, dates no window can shift and a link with a port out of range. Each sitemap must be
read once, every URL left out counted by reason, and one bad entry lose nothing else.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from steppewatch.replay import ReplayServer
from tests.reliability.helpers import (
    Crawl,
    SiteSpec,
    article_html,
    assert_store_and_index_agree,
    crawl,
    local_records,
    source,
    write_registry,
    write_site,
)

MIB = 1024 * 1024
HOST = "faulty.test"
FAULTS: dict[str, dict[str, Any]] = {
    "/slow/": {"fault": "hang", "seconds": 6},
    "/reset/": {"fault": "reset"},
    "/storm/": {"status": 503},
    "/busy/": {"sequence": [{"status": 429, "headers": {"Retry-After": "1"}}, {"file": "busy/index.html"}]},
    "/cut/": {"fault": "truncate", "file": "cut/index.html"},
    "/loop-a/": {"redirect": "/loop-b/", "status": 302},  # a cycle: the duplicate filter ends it
    "/hop/0/": {"redirect": "/hop/1/", "status": 302},  # a chain longer than REDIRECT_MAX_TIMES
    "/huge/": {"fault": "big", "size": 12 * MIB},
    "/flood/": {"fault": "big_stream", "size": 12 * MIB},
    "/bomb/": {"fault": "gzip_bomb", "size": 256 * MIB},
    "/noise/": {"fault": "binary", "size": 20000},
    "/empty/": {"body": ""},
}
UNLISTED = {"/loop-b/": {"redirect": "/loop-a/", "status": 302},
            **{f"/hop/{n}/": {"redirect": f"/hop/{n + 1}/", "status": 302} for n in range(1, 12)}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Crawl, Path, str, ReplayServer]]:
    base = tmp_path_factory.mktemp("faulty")
    files = {
        "busy/index.html": article_html(f"http://{HOST}/busy/", "A page behind a 429", "2024-12-03T09:00:00+00:00", 7),
        "cut/index.html": article_html(f"http://{HOST}/cut/", "A page cut short", "2024-12-03T09:00:00+00:00", 8),
    }
    spec = SiteSpec(HOST, "faulty", articles=5, extra=FAULTS, files=files, unlisted=UNLISTED,
                    registry_extra={"feeds": [{"url": f"http://{HOST}/feed.xml"},
                                              {"url": f"http://{HOST}/storm-feed.xml"}]})
    entry = write_site(base / "sites", spec)
    routes_file = base / "sites" / HOST / "_site.yaml"
    import yaml

    conf = yaml.safe_load(routes_file.read_text())
    conf["routes"]["/storm-feed.xml"] = {"status": 503}
    routes_file.write_text(yaml.safe_dump(conf))
    registry = write_registry(base / "sites.yaml", [entry])
    server = ReplayServer(base / "sites")
    server.start()
    index = f"sqlite:///{base}/index.sqlite"
    try:
        result = crawl(registry, str(base / "store"), index, server.url,
                       extra=["DOWNLOAD_TIMEOUT=2", "RETRY_TIMES=2", "RETRY_BACKOFF_MAX=5"])
        yield result, base / "store", index, server
    finally:
        server.stop()


def feed(run: tuple[Crawl, Path, str, ReplayServer]) -> dict[str, Any]:
    result = run[0]
    assert result.summary is not None, result.stderr[-3000:]
    return source(result.summary, "faulty", "/feed.xml")


def test_the_crawl_completes_and_stores_the_good_articles_only(run) -> None:  # noqa: ANN001
    result, store, index, _ = run
    assert result.returncode == 0, result.stderr[-3000:]
    stored = {r["canonical_url"] for r in local_records(store)}
    good = {f"http://{HOST}/news/{n}/" for n in range(5)} | {f"http://{HOST}/busy/"}
    assert stored == good
    for record in local_records(store):
        assert len(record["text"]) > 300 and "\x00" not in record["text"] and record["title"]
    assert assert_store_and_index_agree(str(store), index) == {"records": 6, "aliases": 0}


@pytest.mark.parametrize(("path", "kind"), [
    ("/slow/", "timeout"),
    ("/reset/", "connection_lost"),
    ("/storm/", "http_503"),
    ("/cut/", "truncated"),
    ("/hop/0/", "redirect_loop"),
    ("/huge/", "too_large"),
    ("/bomb/", "too_large"),
])
def test_each_fault_is_counted_by_kind_for_its_source(run, path: str, kind: str) -> None:  # noqa: ANN001
    kinds = feed(run)["error_kinds"]
    assert kinds.get(kind, 0) >= 1, (path, json.dumps(kinds))
    summary = run[0].summary
    assert summary["sites"]["faulty"]["errors"].get(kind, 0) >= 1


def test_a_body_without_length_over_the_limit_is_cut_off(run) -> None:  # noqa: ANN001
    kinds = feed(run)["error_kinds"]
    assert kinds.get("too_large", 0) == 2, json.dumps(kinds)  # /huge/ (Content-Length over), /bomb/ (inflated)
    assert kinds.get("cancelled", 0) == 1, json.dumps(kinds)  # /flood/: streamed past the limit, cut off
    _, _, _, server = run
    assert server.count(HOST, r"^/flood/$") == 1, "a page over the limit is not fetched again"


def test_binary_served_as_html_and_an_empty_200_are_rejected(run) -> None:  # noqa: ANN001
    assert feed(run)["rejected_kinds"] == {"no_content": 1, "not_html": 1}


def test_server_errors_are_retried_with_backoff_then_given_up(run) -> None:  # noqa: ANN001
    _, _, _, server = run
    assert server.count(HOST, r"^/storm/$") == 3  # the first try and RETRY_TIMES=2
    assert server.count(HOST, r"^/storm-feed\.xml$") == 3
    storm_feed = source(run[0].summary, "faulty", "/storm-feed.xml")
    assert storm_feed["error"] == "http_503" and storm_feed["status"] == 503
    assert not run[0].summary["sites"]["faulty"]["all_sources_failed"], "one failing source is not a failing site"


def test_429_with_retry_after_is_honoured_and_the_page_stored(run) -> None:  # noqa: ANN001
    result, store, _, server = run
    assert server.count(HOST, r"^/busy/$") == 2
    assert f"http://{HOST}/busy/" in {r["canonical_url"] for r in local_records(store)}
    assert json.loads(result.stdout)["sites"]["faulty"]["retries"].get("retry_after_honoured") == 1


def test_redirect_loops_stop(run) -> None:  # noqa: ANN001
    _, _, _, server = run
    assert server.count(HOST, r"^/hop/\d+/$") == 6  # REDIRECT_MAX_TIMES is 5: the request and five redirects
    assert server.count(HOST, r"^/loop-[ab]/$") == 2  # back at /loop-a/: a request already made is not repeated
    assert feed(run)["stored"] == 6


# -- discovery that misbehaves: sitemaps that loop, too many children, URLs too long, bad dates ----------
# Four sites crawled in one run, one per case; every URL skipped must be counted by reason.
SM_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
LOOP, CAPS, LONG, DATES = "loop.test", "caps.test", "long.test", "dates.test"
FUTURE = "Fri, 31 Dec 9999 23:59:59 +0000"  # one day before datetime's end: any shift overflows


def sitemap_index(*children: tuple[str, str | None]) -> str:
    items = "".join(f"<sitemap><loc>{escape(loc)}</loc>{f'<lastmod>{mod}</lastmod>' if mod else ''}</sitemap>"
                    for loc, mod in children)
    return f"<?xml version='1.0' encoding='utf-8'?><sitemapindex xmlns='{SM_NS}'>{items}</sitemapindex>"


def urlset(*urls: tuple[str, str | None]) -> str:
    items = "".join(f"<url><loc>{escape(loc)}</loc>{f'<lastmod>{mod}</lastmod>' if mod else ''}</url>"
                    for loc, mod in urls)
    return f"<?xml version='1.0' encoding='utf-8'?><urlset xmlns='{SM_NS}'>{items}</urlset>"


def rss_item(url: str, title: str, pub_date: str) -> str:
    return f"<item><title>{title}</title><link>{escape(url)}</link><pubDate>{pub_date}</pubDate></item>"


def _sitemap_only(spec: SiteSpec) -> SiteSpec:
    spec.registry_extra = {"feeds": [], "sitemaps": [{"url": f"http://{spec.host}/sitemap_index.xml"}]}
    return spec


def discovery_sites() -> list[SiteSpec]:
    # an index that lists itself (also spelled with another host case and a tracking parameter),
    # and a second index listing the first and itself
    loop = _sitemap_only(SiteSpec(LOOP, "loop", articles=3))
    base = f"http://{LOOP}"
    loop.files = {
        "sitemap_index.xml": sitemap_index((f"{base}/sitemap_index.xml", None),
                                           ("http://LOOP.test/sitemap_index.xml?utm_source=feed", None),
                                           (f"{base}/sitemap-b.xml", None), (f"{base}/sitemap-news.xml", None)),
        "sitemap-b.xml": sitemap_index((f"{base}/sitemap_index.xml", None), (f"{base}/sitemap-b.xml", None),
                                       (f"{base}/sitemap-news.xml", None)),
        "sitemap-news.xml": urlset(*((u, "2024-12-03") for u in loop.article_urls())),
    }
    # an index of 55 child sitemaps, 5 over NEWS_MAX_CHILD_SITEMAPS (50)
    caps = _sitemap_only(SiteSpec(CAPS, "caps", articles=2))
    caps.files = {"sitemap_index.xml": sitemap_index(*((f"http://{CAPS}/sm/{n}.xml", None) for n in range(55))),
                  "sm/0.xml": urlset(*((u, "2024-12-03") for u in caps.article_urls())),
                  **{f"sm/{n}.xml": urlset() for n in range(1, 55)}}
    # an article and a child sitemap whose URLs are over URLLENGTH_LIMIT (2083)
    long = SiteSpec(LONG, "long", articles=2,
                    feed_items=[rss_item(f"http://{LONG}/news/{'x' * 2100}/", "long", "Tue, 03 Dec 2024 10:00:00 +0000")],
                    registry_extra={"sitemaps": [{"url": f"http://{LONG}/sitemap_index.xml"}]})
    long.files = {"sitemap_index.xml": sitemap_index((f"http://{LONG}/sitemap-{'y' * 2100}.xml", None))}
    # a date no datetime can shift: on a feed item, a child sitemap and a sitemap entry, each listed
    # first; and a feed link with a port out of range
    dates = SiteSpec(DATES, "dates", articles=3, registry_extra={
        "sitemaps": [{"url": f"http://{DATES}/sitemap_index.xml"}]})
    dates.feed_items = [rss_item(f"http://{DATES}:99999/news/port/", "port", "Tue, 03 Dec 2024 10:00:00 +0000"),
                        rss_item(f"http://{DATES}/future/", "future", FUTURE)]
    sm = [f"http://{DATES}/sm/{n}/" for n in range(3)]
    dates.files = {
        "future/index.html": article_html(f"http://{DATES}/future/", "Dated 9999 by the feed", "2024-12-03T09:00:00+00:00", 11),
        **{f"sm/{n}/index.html": article_html(u, f"Sitemap story {n}", "2024-12-04T09:00:00+00:00", 20 + n)
           for n, u in enumerate(sm)},
        "sitemap_index.xml": sitemap_index((f"http://{DATES}/sitemap-future.xml", FUTURE),
                                           (f"http://{DATES}/sitemap-dec.xml", "2024-12-05")),
        "sitemap-future.xml": urlset((sm[0], FUTURE), (sm[1], "9999-12-31")),
        "sitemap-dec.xml": urlset((sm[2], "2024-12-04T10:00:00+00:00")),
    }
    return [loop, caps, long, dates]


@pytest.fixture(scope="module")
def discovery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Crawl, Path, ReplayServer]]:
    base = tmp_path_factory.mktemp("discovery")
    entries = [write_site(base / "sites", spec) for spec in discovery_sites()]
    registry = write_registry(base / "sites.yaml", entries)
    server = ReplayServer(base / "sites")
    server.start()
    try:
        # CLOSESPIDER_TIMEOUT only bounds a crawl that would otherwise loop for ever
        result = crawl(registry, str(base / "store"), f"sqlite:///{base}/index.sqlite", server.url,
                       extra=["CLOSESPIDER_TIMEOUT=20"])
        yield result, base / "store", server
    finally:
        server.stop()


def _site_summary(result: Crawl, site: str) -> dict[str, Any]:
    assert result.summary is not None, result.stderr[-3000:]
    return result.summary["sites"][site]


def _stored(store: Path, host: str) -> set[str]:
    return {r["canonical_url"] for r in local_records(store) if f"//{host}/" in r["canonical_url"]}


def test_a_sitemap_index_listing_itself_or_another_that_lists_it_is_read_once(discovery) -> None:  # noqa: ANN001
    result, store, server = discovery
    for path in ("/sitemap_index.xml", "/sitemap-b.xml", "/sitemap-news.xml"):
        assert server.count(LOOP, f"^{re.escape(path)}") == 1, (path, server.count(LOOP))
    # listed again: the index by itself (twice: also spelled LOOP.test?utm_source=feed), by sitemap-b;
    # sitemap-b and sitemap-news by sitemap-b
    assert _site_summary(result, "loop")["skipped"].get("sitemap_already_read") == 5
    assert _stored(store, LOOP) == {f"http://{LOOP}/news/{n}/" for n in range(3)}


def test_child_sitemaps_over_the_cap_are_counted_and_logged_once(discovery) -> None:  # noqa: ANN001
    result, store, server = discovery
    assert server.count(CAPS, r"^/sm/\d+\.xml$") == 50
    assert _site_summary(result, "caps")["skipped"].get("child_sitemaps_over_cap") == 5
    warnings = re.findall(r"sitemap http://caps\.test/sitemap_index\.xml .*NEWS_MAX_CHILD_SITEMAPS=50: 5 left out",
                          result.stderr)
    assert len(warnings) == 1, result.stderr[-3000:]
    assert _stored(store, CAPS) == {f"http://{CAPS}/news/{n}/" for n in range(2)}


def test_urls_over_the_length_limit_are_counted_not_dropped_silently(discovery) -> None:  # noqa: ANN001
    result, store, server = discovery
    assert _site_summary(result, "long")["skipped"].get("url_too_long") == 2  # the article and the child sitemap
    assert server.count(LONG, "x" * 100) == 0 and server.count(LONG, "y" * 100) == 0
    assert _stored(store, LONG) == {f"http://{LONG}/news/{n}/" for n in range(2)}


def test_a_date_out_of_range_loses_only_that_date_and_the_rest_of_the_source_is_read(discovery) -> None:  # noqa: ANN001
    result, store, _ = discovery
    site = _site_summary(result, "dates")
    assert _stored(store, DATES) == ({f"http://{DATES}/news/{n}/" for n in range(3)} | {f"http://{DATES}/future/"}
                                     | {f"http://{DATES}/sm/{n}/" for n in range(3)})
    assert site["skipped"].get("bad_url") == 1  # http://dates.test:99999/…
    assert "source_date_out_of_window" not in site["skipped"]  # 9999-12-31 took no URL with it
    assert site["source_errors"] == {} and all(s["error"] is None for s in site["sources"]), site["sources"]
    assert result.returncode == 0, result.stderr[-3000:]


def test_every_skipped_url_is_counted_by_reason_per_site_and_in_the_totals(discovery) -> None:  # noqa: ANN001
    result, _, _ = discovery
    assert result.summary is not None, result.stderr[-3000:]
    for group in ("skipped", "source_errors", "undated"):
        per_reason: Counter[str] = Counter()
        for site in result.summary["sites"].values():
            per_reason.update(site.get(group, {}))
        assert result.summary["totals"][group] == dict(per_reason), group
    assert {"sitemap_already_read", "child_sitemaps_over_cap", "url_too_long", "bad_url"} <= set(
        result.summary["totals"]["skipped"])


BOOM = "boom.test"


def _boom_spider():  # noqa: ANN202
    """The spider of a site with a feed and a sitemap, outside a crawl: its callbacks called directly."""
    from datetime import UTC, datetime

    from scrapy.utils.test import get_crawler

    from spiders.news import NewsSpider
    from steppewatch.config import Config
    from steppewatch.crawl import scrapy_settings
    from steppewatch.registry import Site

    site = Site.model_validate({"id": "boom", "name": BOOM, "country": "KZ", "languages": ["en"],
                                "allowed_domains": [BOOM], "timezone": "UTC",
                                "feeds": [{"url": f"http://{BOOM}/feed.xml"}],
                                "sitemaps": [{"url": f"http://{BOOM}/sitemap.xml"}]})
    crawler = get_crawler(NewsSpider, {**scrapy_settings(Config()), "DEDUP_ENABLED": False})
    return NewsSpider.from_crawler(crawler, site=site, since=datetime(2024, 12, 1, tzinfo=UTC),
                                   until=datetime(2024, 12, 8, tzinfo=UTC))


def _source_response(spider, url: str, kind: str, body: str = ""):  # noqa: ANN001, ANN202
    from scrapy.http import TextResponse

    source = spider.site.feeds[0] if kind == "feed" else spider.site.sitemaps[0]
    spider.ledger.source(url, kind)  # as start() does
    request = spider._source_request(url, kind, source, 0, None)
    return TextResponse(url, body=body.encode(), encoding="utf-8", request=request)


def test_a_date_no_window_can_shift_keeps_its_url_undated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the date parser lets through: 9999-12-31 as a bare day overflows the window's arithmetic."""
    from datetime import UTC, datetime

    import spiders.news as news
    from spiders.discovery import Entry, Parsed

    end = datetime(9999, 12, 31, tzinfo=UTC)
    parsed = Parsed("sitemapindex", children=[Entry(f"http://{BOOM}/sm-{n}.xml", end, False) for n in range(2)])
    monkeypatch.setattr(news, "parse_sitemap", lambda *args: parsed)
    spider = _boom_spider()
    children = list(spider.parse_sitemap(_source_response(spider, f"http://{BOOM}/sitemap.xml", "sitemap")))
    assert [r.url for r in children] == [f"http://{BOOM}/sm-0.xml", f"http://{BOOM}/sm-1.xml"]
    parsed = Parsed("urlset", entries=[Entry(f"http://{BOOM}/news/{n}/", end if n == 0 else None, False)
                                       for n in range(3)])
    articles = list(spider.parse_sitemap(_source_response(spider, f"http://{BOOM}/sm-0.xml", "sitemap")))
    assert [r.url for r in articles] == [f"http://{BOOM}/news/{n}/" for n in range(3)]
    assert articles[0].cb_kwargs["listed"].published is None  # the entry lost its date, not its URL
    summary = spider.ledger.site_summary()
    assert summary["undated"] == {"bad_date": 3} and summary["source_errors"] == {}


def test_an_exception_while_reading_a_source_is_counted_as_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """What no input above still raises: a source callback that fails anyway is a counted source error."""
    import spiders.news as news
    from steppewatch.ledger import RunLedger

    def parser_fails(*args: object) -> None:
        raise RuntimeError("a bug in the parser")

    monkeypatch.setattr(news, "parse_sitemap", parser_fails)
    spider = _boom_spider()
    assert list(spider.parse_sitemap(_source_response(spider, f"http://{BOOM}/sitemap.xml", "sitemap"))) == []

    real_strip_amp = news.strip_amp

    def fails_on_one(url: str, *args: object) -> str:
        if url.endswith("/2/"):
            raise KeyError(url)
        return real_strip_amp(url, *args)

    monkeypatch.setattr(news, "strip_amp", fails_on_one)
    items = "".join(rss_item(f"http://{BOOM}/news/{n}/", f"s{n}", "Tue, 03 Dec 2024 10:00:00 +0000") for n in range(4))
    feed_requests = spider.parse_feed(_source_response(spider, f"http://{BOOM}/feed.xml", "feed",
                                                       f"<rss version='2.0'><channel>{items}</channel></rss>"))
    assert [r.url for r in feed_requests] == [f"http://{BOOM}/news/{n}/" for n in (0, 1, 3)]  # the rest is read

    summary = spider.ledger.site_summary()
    assert summary["source_errors"] == {"exception_RuntimeError": 1, "exception_KeyError": 1}
    errors = {s["url"]: s["error"] for s in summary["sources"]}
    assert errors[f"http://{BOOM}/sitemap.xml"].startswith("exception_RuntimeError")
    assert errors[f"http://{BOOM}/feed.xml"].startswith("exception_KeyError")
    # one that escaped a callback all the same (Scrapy counts it) is a source error of the site
    from twisted.python.failure import Failure

    escaped = RunLedger()
    for _ in range(2):
        escaped.spider_error(Failure(OverflowError("date value out of range")))
    assert escaped.site_summary()["source_errors"] == {"exception_OverflowError": 2}
