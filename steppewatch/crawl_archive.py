"""The crawl's archive as a Scrapy extension: one Index and store per crawler.

The spider asks the index which URLs are already stored, the pipelines commit articles
and remember rejected pages; both reach the same ``Archive`` through
``crawler.get_extension(CrawlArchive)``. When the spider opens, writes a crashed run left
undone are carried out first (``Archive.repair``), so a rerun finishes what a crash left;
how many is recorded in the run ledger.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from scrapy import signals

from steppewatch.archive import Archive
from steppewatch.index import FetchPolicy, Index, rejection_schedule
from steppewatch.ledger import RunLedger
from steppewatch.store import open_store


class CrawlArchive:
    def __init__(self, archive: Archive, ledger: RunLedger | None = None) -> None:
        self.archive = archive
        self.ledger = ledger  # the crawler's RunLedger, taken when the spider opens if not given

    @property
    def index(self) -> Index:
        return self.archive.index

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlArchive:
        settings = crawler.settings
        policy = FetchPolicy(
            recheck_within=timedelta(hours=settings.getfloat("DEDUP_RECHECK_WITHIN_HOURS")),
            recheck_after=timedelta(hours=settings.getfloat("DEDUP_RECHECK_AFTER_HOURS")),
            max_rechecks=settings.getint("DEDUP_MAX_RECHECKS"),
            rejection_recheck=rejection_schedule(settings.get("NEWS_REJECTION_RECHECK")),
        )
        extension = cls(Archive(Index(settings.get("INDEX_URL"), policy), open_store(settings.get("STORE_URI"))))
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        return extension

    def spider_opened(self, spider: Any) -> None:
        repaired = self.archive.repair()
        if repaired:
            spider.logger.info("finished %d store writes a crashed run left undone", repaired)
            ledger = self.ledger or spider.crawler.get_extension(RunLedger)
            if ledger is not None:
                ledger.count("repaired_writes", repaired)
