"""Progress of a long crawl: one line every ``PROGRESS_INTERVAL`` seconds on stderr.

A Scrapy extension (``PROGRESS_ENABLED``; the CLI turns it on when stderr is a terminal
or with ``--progress``). A run crawls each site with its own crawler in one reactor, so
the crawlers of a process share one ``ProgressBoard`` (given in the ``PROGRESS_BOARD``
setting; one of its own otherwise): a single reactor ``LoopingCall`` writes one line for
all of them — pages fetched, pages per second, articles stored, errors, requests still
queued and, when the queue is known, the time left at the current rate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from scrapy import signals
from scrapy.exceptions import NotConfigured

from steppewatch.ledger import RunLedger


class ProgressBoard:
    """The crawlers of one process and the timer that reports on them."""

    def __init__(self, interval: float = 10.0, out: TextIO | None = None, label: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.out = out
        self.label = label
        self.clock = clock
        self.crawlers: list[Any] = []
        self.open = 0
        self.started = clock()
        self.last = (self.started, 0)  # (when, pages) at the previous line
        self._loop: Any = None

    def __deepcopy__(self, memo: dict[int, Any]) -> ProgressBoard:
        # Scrapy deep-copies the settings for each crawler: the board stays the one shared
        return self

    def crawler_opened(self, crawler: Any) -> None:
        self.crawlers.append(crawler)
        self.open += 1
        if self._loop is None:
            from twisted.internet import task

            self.started = self.clock()
            self.last = (self.started, 0)
            self._loop = task.LoopingCall(self.report)
            self._loop.start(self.interval, now=False)

    def crawler_closed(self, crawler: Any) -> None:
        self.open -= 1
        if self.open <= 0 and self._loop is not None:
            if self._loop.running:
                self._loop.stop()
            self._loop = None
            self.report(final=True)

    def report(self, final: bool = False) -> None:
        (self.out or sys.stderr).write(self.line(final) + "\n")
        (self.out or sys.stderr).flush()

    def line(self, final: bool = False) -> str:
        pages = stored = errors = queued = 0
        queue_known = True
        for crawler in self.crawlers:
            pages += int(crawler.stats.get_value("response_received_count", 0) or 0)
            ledger = _ledger(crawler)
            if ledger is not None:
                stored += ledger.counts.get("stored", 0)
                errors += sum(ledger.groups["errors"].values()) + sum(ledger.groups["source_errors"].values())
            left = _queued(crawler)
            if left is None:
                queue_known = False
            else:
                queued += left
        now = self.clock()
        then, pages_then = self.last
        rate = (pages - pages_then) / (now - then) if now > then else 0.0
        self.last = (now, pages)
        done = len(self.crawlers) - self.open
        parts = [f"{self.label}progress: {pages} pages fetched ({rate:.1f}/s)", f"{stored} stored",
                 f"{errors} errors", f"sites {done}/{len(self.crawlers)} done"]
        if final:
            parts.append(f"finished in {now - self.started:.0f}s")
        elif queue_known:
            parts.append(f"{queued} queued" + (f", ETA {queued / rate:.0f}s" if rate > 0 else ""))
        return ", ".join(parts)


class CrawlProgress:
    """Registers its crawler with the process's ``ProgressBoard`` while the crawl runs."""

    def __init__(self, crawler: Any, board: ProgressBoard) -> None:
        self.crawler = crawler
        self.board = board

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlProgress:
        settings = crawler.settings
        if not settings.getbool("PROGRESS_ENABLED"):
            raise NotConfigured
        board = settings.get("PROGRESS_BOARD") or ProgressBoard(settings.getfloat("PROGRESS_INTERVAL"))
        extension = cls(crawler, board)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self, spider: Any) -> None:
        self.board.crawler_opened(self.crawler)

    def spider_closed(self, spider: Any) -> None:
        self.board.crawler_closed(self.crawler)


def _ledger(crawler: Any) -> RunLedger | None:
    try:
        return crawler.get_extension(RunLedger)
    except RuntimeError:
        return None


def _queued(crawler: Any) -> int | None:
    """Requests the crawler's scheduler holds and its downloader is fetching, or None."""
    engine = getattr(crawler, "engine", None)
    scheduler = getattr(engine, "scheduler", None) if engine is not None else None
    if scheduler is None:
        return 0 if engine is not None and not crawler.crawling else None
    try:
        return len(scheduler) + len(engine.downloader.active)  # type: ignore[arg-type]
    except TypeError:  # a scheduler without a length
        return None
