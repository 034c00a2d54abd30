"""Which articles a crawl run owns: the rule that keeps windows from losing articles.

Windows divide the work; they must not filter data away. A run is one of two kinds:

- **discover** (scheduled and manually triggered runs): the run owns every new URL it
  fetches. Its sources are read for entries dated from ``since - lookback`` on (the
  look-back covers feed lag and clock or time-zone errors), and whatever it then fetches
  is stored whatever date the page gives, because the run that covered that date may not
  have seen the article yet: a date-only page, a local time read as UTC, or a feed that
  lists an article hours late would otherwise put it in a window already crawled.
- **backfill** (``crawl --since --until``, Airflow backfills): the run owns the articles
  dated in ``[since, until)`` by their best date *or* by the date of the source that
  listed them, each widened by ``tolerance`` (14 hours: the largest UTC offset a date can
  be misread by) at both edges.

An article may then be owned by two runs (neighbouring backfill windows, a scheduled run
and a backfill): the index stores a URL once, so it is stored once. An article dated in a
backfill's window is never left out by it, and a scheduled run never drops what it fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class WindowMode(StrEnum):
    DISCOVER = "discover"
    BACKFILL = "backfill"


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime
    mode: WindowMode = WindowMode.BACKFILL
    lookback: timedelta = timedelta(hours=48)
    tolerance: timedelta = timedelta(hours=14)

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None or self.since >= self.until:
            raise ValueError(f"window must be timezone-aware with since < until: {self.since}..{self.until}")

    @property
    def lo(self) -> datetime:
        return self.since - (self.lookback if self.mode is WindowMode.DISCOVER else self.tolerance)

    @property
    def hi(self) -> datetime | None:
        """The upper bound of what the run reads and owns; None: no bound (discover)."""
        return None if self.mode is WindowMode.DISCOVER else self.until + self.tolerance

    def _within(self, start: datetime, length: timedelta = timedelta(0)) -> bool:
        """Whether [start, start + length] meets [lo, hi)."""
        hi = self.hi
        return start + length >= self.lo and (hi is None or start < hi)

    def reads(self, published: datetime | None, has_time: bool = True) -> bool:
        """Whether a source entry dated so is fetched (an undated entry always is; a bare
        day counts as the whole day)."""
        if published is None:
            return True
        return self._within(published, timedelta(0) if has_time else timedelta(days=1))

    def owns(self, published: datetime | None, listed: datetime | None, fetched: datetime,
             day_only: bool = False) -> bool:
        """Whether a fetched article is stored by this run, by its best date
        (``published``; the whole day if ``day_only``), the date of the source that listed
        it, or, undated everywhere, the time it was fetched."""
        if self.mode is WindowMode.DISCOVER:
            return True
        if published is None and listed is None:
            return self.since <= fetched < self.until  # a live backfill: the article is new now
        return ((published is not None and self._within(published, timedelta(days=1) if day_only else timedelta(0)))
                or (listed is not None and self._within(listed)))
