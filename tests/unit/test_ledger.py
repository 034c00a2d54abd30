"""The run ledger without a crawl: what the spider records, merging processes, verdicts."""

from __future__ import annotations

from datetime import UTC, datetime

from scrapy.http import TextResponse
from scrapy.utils.test import get_crawler

from spiders.news import NewsSpider
from steppewatch.config import Config
from steppewatch.crawl import scrapy_settings
from steppewatch.ledger import RunLedger, with_verdict
from steppewatch.registry import Site

HOST = "ledger.test"


def _spider() -> NewsSpider:
    site = Site.model_validate({"id": "ledger", "name": HOST, "country": "KZ", "languages": ["en"],
                                "allowed_domains": [HOST], "timezone": "UTC",
                                "feeds": [{"url": f"http://{HOST}/feed.xml"}]})
    crawler = get_crawler(NewsSpider, {**scrapy_settings(Config()), "DEDUP_ENABLED": False})
    return NewsSpider.from_crawler(crawler, site=site, since=datetime(2024, 12, 1, tzinfo=UTC),
                                   until=datetime(2024, 12, 8, tzinfo=UTC))


def _item(n: int, day: int) -> str:
    return (f"<item><title>t{n}</title><link>http://{HOST}/news/{n}/</link>"
            f"<pubDate>Tue, 0{day} Dec 2024 10:00:00 +0000</pubDate></item>")


def test_a_source_is_recorded_in_the_ledger_and_no_stat_key_carries_a_url() -> None:
    spider = _spider()
    url = f"http://{HOST}/feed.xml"
    spider.ledger.source(url, "feed")
    request = spider._source_request(url, "feed", spider.site.feeds[0], 0, None)
    body = f"<rss version='2.0'><channel>{_item(1, 3)}{_item(2, 3)}{_item(3, 9)}</channel></rss>"
    requests = spider.parse_feed(TextResponse(url, body=body.encode(), encoding="utf-8", request=request))
    assert [r.cb_kwargs["source_url"] for r in requests] == [url, url]
    summary = spider.ledger.site_summary()
    [source] = summary["sources"]
    assert (source["url"], source["kind"], source["items"], source["discovered"]) == (url, "feed", 3, 2)
    assert summary["skipped"] == {"source_date_out_of_window": 1}
    stats = spider.crawler.stats.get_stats()
    assert stats["sw/discovered"] == 2 and stats["sw/skipped/source_date_out_of_window"] == 1
    assert not [key for key in stats if "://" in key or HOST in key]


def test_ledgers_of_the_processes_of_one_run_merge_into_one() -> None:
    feed = "http://x.test/feed.xml"
    parts = []
    for shard, stored in ((0, 2), (1, 3)):
        ledger = RunLedger()
        ledger.source(feed, "feed")
        ledger.source_read(feed, 200, "application/rss+xml", "rss", 10)
        for n in range(stored):
            ledger.discovered(feed)
            ledger.fetched(feed)
            ledger.committed("stored", feed, [f"articles/site=x/date=2024-12-03/{shard}-{n}.json"], [])
        ledger.skipped("other_shard", 10 - stored)
        ledger.skipped("source_date_out_of_window")  # read by both: one entry, not two
        ledger.skipped("already_stored", shard)  # the process's own article URLs
        ledger.article_failed(feed, "timeout")
        parts.append(ledger)
    merged = RunLedger.merged(parts)
    summary = merged.site_summary()
    [source] = summary["sources"]
    assert source["items"] == 10  # every process read the feed: listed once
    assert (source["discovered"], source["fetched"], source["stored"], source["errors"]) == (5, 5, 5, 2)
    assert source["error_kinds"] == {"timeout": 2}
    assert summary["stored"] == 5 and summary["skipped"] == {"already_stored": 1, "source_date_out_of_window": 1}
    assert summary["errors"] == {"timeout": 2} and len(merged.held_keys()[0]) == 5
    assert summary["verdict"] == "5 new; 2 article(s) failed (timeout 2)"


def _site(**counts: object) -> dict:
    base = {"discovered": 0, "fetched": 0, "stored": 0, "out_of_window": 0, "not_stored": 0, "rejected": {},
            "errors": {}, "skipped": {}, "outcome": {}, "store_errors": {}, "sources": []}
    return {**base, **counts}


def test_verdicts() -> None:
    feed = {"url": "f", "kind": "feed", "items": 7, "error": None}
    assert with_verdict(_site(sources=[feed], discovered=0, skipped={"already_stored": 5,
                                                                      "source_date_out_of_window": 2}))["verdict"] \
        == "nothing new (7 found: 5 already stored, 2 outside the window)"
    down = [{"url": "f", "kind": "feed", "items": 0, "error": "timeout"},
            {"url": "s", "kind": "sitemap", "items": 0, "error": "dns"}]
    site = with_verdict(_site(sources=down))
    assert site["state"] == "unreachable" and site["verdict"] == "nothing reachable (every source failed: dns 1, timeout 1)"
    half = [down[0], {**feed, "items": 0}]
    assert with_verdict(_site(sources=half))["verdict"] == (
        "nothing found (sources read, no article listed); 1 of 2 sources failed (timeout 1)")


def test_store_keys_go_to_the_ledgers_keys_file_and_travel_with_it(tmp_path) -> None:  # noqa: ANN001
    import pickle

    ledger = RunLedger(keys_file=str(tmp_path / "site.keys"))
    ledger.committed("stored", None, ["articles/a.json", "raw/a.html.gz"], [])
    ledger.committed("updated", None, ["articles/b.json"], ["articles/old-b.json"])
    ledger.close()  # the spider closed: the file holds them (not memory, while the crawl runs)
    assert (tmp_path / "site.keys").read_text().splitlines() == [
        "+articles/a.json", "+raw/a.html.gz", "+articles/b.json", "-articles/old-b.json"]
    back = pickle.loads(pickle.dumps(ledger))  # as a crawl process hands it to the run
    assert back.held_keys() == ({"articles/a.json", "raw/a.html.gz", "articles/b.json"}, {"articles/old-b.json"})
    assert back.site_summary()["keys_written"] == 3
