"""Scrapy item pipelines: extract, keep the window, store.

Each is a small component with plain constructor arguments and a thin
``from_crawler``. ``ExtractPipeline`` turns a ``FetchedPage`` into an ``ArticleItem``
(or counts a rejection and, for listing/search pages, follows their article links);
``WindowPipeline`` lets through only articles published in the run's window;
``StorePipeline`` writes the record and the gzipped raw page at deterministic keys.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scrapy.exceptions import DropItem

from pipelines.extract import discovery_links, extract_page
from spiders.news import FetchedPage
from steppewatch.models import Article, Rejection, RejectReason
from steppewatch.store import Store, article_key, open_store, raw_key


@dataclass
class ArticleItem:
    article: Article
    raw: bytes


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
        return ArticleItem(result, item.body)


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
    """Write each article once per run at its deterministic keys."""

    def __init__(self, store: Store, crawler: Any) -> None:
        self.store = store
        self.crawler = crawler
        self.seen: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(open_store(crawler.settings.get("STORE_URI", "data/store")), crawler)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, ArticleItem):
            return item
        article = item.article
        stats = self.crawler.stats
        if article.id in self.seen:
            stats.inc_value("sw/duplicates_in_run")
            raise DropItem(f"already stored in this run: {article.canonical_url}")
        self.seen.add(article.id)
        day = storage_day(article)
        record = json.dumps(article.to_dict(), ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
        meta = {"site": article.site, "published": article.published or "", "content-hash": article.content_hash}
        self.store.put(raw_key(article.site, day, article.id), gzip.compress(item.raw, mtime=0),
                       "text/html", content_encoding="gzip", metadata=meta)
        self.store.put(article_key(article.site, day, article.id), record, "application/json", metadata=meta)
        stats.inc_value("sw/stored")
        source = article.source.get("url")
        if source:
            stats.inc_value(f"sw/source/{source}/stored")
        stats.set_value(f"sw/keys/{article.id}", article_key(article.site, day, article.id))
        return item


def storage_day(article: Article) -> str:
    """The UTC day an article is filed under: its publication date, else its fetch date."""
    when = article.published_dt or datetime.fromisoformat(article.fetched_at or datetime.now(UTC).isoformat())
    return when.astimezone(UTC).date().isoformat()
