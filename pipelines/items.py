"""The Scrapy item pipeline that stores articles.

The spider extracts each page and keeps the articles its window owns
(``spiders/news.py``); ``StorePipeline``, a small component with plain constructor
arguments and a thin ``from_crawler``, hands each ``ArticleItem`` to the archive, which
stores it once (record and gzipped raw page at deterministic keys), as a new version,
as an alias, or not at all, and records what happened in the run ledger.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from scrapy.exceptions import DropItem

from steppewatch.archive import Archive
from steppewatch.crawl_archive import CrawlArchive
from steppewatch.errors import IndexUnavailable
from steppewatch.ledger import RunLedger
from steppewatch.models import ArticleItem
from steppewatch.redaction import redact_text

logger = logging.getLogger(__name__)


def run_ledger(crawler: Any) -> RunLedger:
    """The crawler's ``RunLedger`` (EXTENSIONS); the pipeline records into it."""
    ledger = crawler.get_extension(RunLedger)
    if ledger is None:
        raise RuntimeError("the store pipeline needs the RunLedger extension (EXTENSIONS)")
    return ledger


class StorePipeline:
    """Store each article once: new records, new versions, aliases, or nothing.

    A transient fault of the store or the index (S3 or PostgreSQL unreachable, a
    connection lost) is retried ``STORE_RETRY_TIMES`` times with exponential backoff from
    ``STORE_RETRY_BACKOFF`` seconds; ``Archive.commit`` writes new objects first, commits
    the index, and only then deletes or rewrites, so a failed attempt leaves no index row
    pointing at a missing object and the next attempt (or the next run) completes it. An
    article still not stored is counted (not stored, store errors by kind) and dropped;
    after ``STORE_MAX_CONSECUTIVE_FAILURES`` in a row the crawl closes
    (``store_unavailable``) instead of fetching pages it cannot keep.

    Each commit's outcome and the store keys it wrote and deleted go to the run ledger,
    which hands them to the run's manifest.
    """

    def __init__(self, crawler: Any, ledger: RunLedger, archive: Archive | None = None,
                 retry_times: int = 3, retry_backoff: float = 1.0, max_consecutive_failures: int = 5) -> None:
        self.archive = archive  # the crawler's (CrawlArchive), taken when the spider opens if not given
        self.crawler = crawler
        self.ledger = ledger
        self.retry_times = retry_times
        self.retry_backoff = retry_backoff
        self.max_consecutive_failures = max_consecutive_failures
        self.consecutive_failures = 0
        self._closing: asyncio.Task[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        settings = crawler.settings
        return cls(crawler, run_ledger(crawler), None, settings.getint("STORE_RETRY_TIMES"),
                   settings.getfloat("STORE_RETRY_BACKOFF"), settings.getint("STORE_MAX_CONSECUTIVE_FAILURES"))

    def open_spider(self) -> None:
        if self.archive is None:
            extension = self.crawler.get_extension(CrawlArchive)
            if extension is None:
                raise RuntimeError("StorePipeline needs the CrawlArchive extension (EXTENSIONS)")
            self.archive = extension.archive

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, ArticleItem):
            return item
        article = item.article
        for attempt in itertools.count():
            try:
                result = self.archive.commit(article, item.raw, extra_urls=item.urls)
                break
            except Exception as exc:  # every failure is counted; only transient ones are retried
                kind, transient = store_error_kind(exc)
                self.ledger.store_failed(kind)
                if transient and attempt < self.retry_times:
                    self.ledger.count("store_retries")
                    await asyncio.sleep(self.retry_backoff * 2**attempt)
                    continue
                self._failed(article.url, kind, exc, attempt + 1)
                raise DropItem(f"not stored ({kind}): {article.url}") from None
        self.consecutive_failures = 0
        self.ledger.committed(result.outcome.value, article.source.get("url"), list(result.keys),
                              list(result.deleted))
        return item

    def _failed(self, url: str, kind: str, exc: BaseException, attempts: int) -> None:
        self.ledger.not_stored()
        self.consecutive_failures += 1
        logger.error("not stored after %d attempt(s) (%s): %s: %s", attempts, kind, url, redact_text(str(exc))[:500])
        if self.consecutive_failures == self.max_consecutive_failures:
            logger.error("%d articles in a row could not be stored: closing the crawl", self.consecutive_failures)
            # kept referenced: the loop holds tasks only weakly
            self._closing = asyncio.get_running_loop().create_task(
                self.crawler.engine.close_spider_async(reason="store_unavailable"))


def store_error_kind(exc: BaseException) -> tuple[str, bool]:
    """(a stats name, whether retrying may help) for a failure to store an article."""
    module = type(exc).__module__
    name = type(exc).__name__
    if isinstance(exc, IndexUnavailable):  # the index file itself is gone: no retry brings it back
        return "index_unavailable", False
    if module.startswith("sqlalchemy"):
        import sqlalchemy.exc as sa_exc

        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) or getattr(
                exc, "connection_invalidated", False):
            return "index_unavailable", True
        return f"index_{name}", False
    if module.startswith(("botocore", "boto3", "urllib3")):
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) if hasattr(exc, "response") else ""
        if not code:  # no answer at all: endpoint down, timeout, connection closed
            return "store_unavailable", True
        transient = code.startswith("5") or code in ("SlowDown", "RequestTimeout", "InternalError",
                                                     "ServiceUnavailable", "Throttling", "RequestTimeTooSkewed")
        return ("store_unavailable" if transient else f"store_{code}"), transient
    if isinstance(exc, OSError):
        return f"store_io_{exc.errno or name}", True
    return name, False
