"""Scrapy item pipelines: extract, keep the window, store.

Each is a small component with plain constructor arguments and a thin
``from_crawler``. ``ExtractPipeline`` turns a ``FetchedPage`` into an ``ArticleItem``
(or counts a rejection and, for listing/search pages, follows their article links);
``WindowPipeline`` lets through only articles published in the run's window;
``StorePipeline`` hands it to the index, which stores it once (record and gzipped raw
page at deterministic keys), as a new version, as an alias, or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scrapy.exceptions import DropItem

from pipelines.extract import discovery_links, extract_page
from spiders.news import FetchedPage
from steppewatch.index import Index, Outcome, shared_index
from steppewatch.models import Article, Rejection, RejectReason
from steppewatch.store import Store, open_store


@dataclass
class ArticleItem:
    article: Article
    raw: bytes
    urls: list[str]  # every URL form the page was reached by, for URL dedup


def _stats(crawler: Any) -> Any:
    return crawler.stats


class ExtractPipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> ExtractPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> ArticleItem:
        if not isinstance(item, FetchedPage):
            return item
        spider = self.crawler.spider
        result = extract_page(
            item.body, item.url, spider.site, status=item.status, content_type=item.content_type,
            listed=item.listed, fetched_at=datetime.fromisoformat(item.fetched_at),
        )
        stats = _stats(self.crawler)
        if isinstance(result, Rejection):
            stats.inc_value(f"sw/rejected/{result.reason.value}")
            if item.listed:
                stats.inc_value(f"sw/source/{item.listed.source_url}/rejected")
            if result.reason in (RejectReason.LISTING, RejectReason.SEARCH):
                links = discovery_links(item.body, item.url, spider.site, item.content_type)
                for request in spider.follow_discovery_page(item, links):
                    self.crawler.engine.crawl(request)
            raise DropItem(f"not an article ({result.reason.value}: {result.detail}): {item.url}")
        return ArticleItem(result, item.body, list(item.meta.get("urls", [])))


class WindowPipeline:
    """Keep articles whose own (or listed) publication date is in [since, until)."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> WindowPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, ArticleItem):
            return item
        spider = self.crawler.spider
        article = item.article
        when = article.published_dt
        if when is None:
            # Undated everywhere: keep it only when this run is live (the window holds now).
            fetched = datetime.fromisoformat(article.fetched_at or datetime.now(UTC).isoformat())
            if spider.since <= fetched < spider.until:
                article.date_source = "fetched"
                return item
            self.crawler.stats.inc_value("sw/out_of_window")
            raise DropItem(f"undated article outside a live window: {article.url}")
        if not (spider.since <= when.astimezone(UTC) < spider.until):
            self.crawler.stats.inc_value("sw/out_of_window")
            raise DropItem(f"published {article.published}, outside the window: {article.url}")
        return item


class StorePipeline:
    """Store each article once: new records, new versions, aliases, or nothing.

    The store keys a run writes and deletes go to ``STORE_KEYS_LOG`` (a file, one
    ``+key`` or ``-key`` per line) for the run's manifest, not into memory: a year's
    backfill writes millions of them.
    """

    def __init__(self, store: Store, index: Index, crawler: Any, keys_log: str | None = None) -> None:
        self.store = store
        self.index = index
        self.crawler = crawler
        self.keys_log = open(keys_log, "a", encoding="utf-8") if keys_log else None  # noqa: SIM115

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(open_store(crawler.settings.get("STORE_URI", "data/store")), shared_index(crawler), crawler,
                   crawler.settings.get("STORE_KEYS_LOG"))

    def close_spider(self) -> None:
        if self.keys_log is not None:
            self.keys_log.close()

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, ArticleItem):
            return item
        article = item.article
        stats = self.crawler.stats
        result = self.index.commit(article, item.raw, self.store, extra_urls=item.urls)
        stats.inc_value(f"sw/outcome/{result.outcome.value}")
        if result.outcome == Outcome.STORED:
            stats.inc_value("sw/stored")
            source = article.source.get("url")
            if source:
                stats.inc_value(f"sw/source/{source}/stored")
        for op, keys in (("+", result.keys), ("-", result.deleted)):
            for key in keys:
                if key:
                    stats.inc_value("sw/keys_logged" if op == "+" else "sw/keys_deleted_logged")
                    if self.keys_log is not None:
                        self.keys_log.write(f"{op}{key}\n")
        return item
