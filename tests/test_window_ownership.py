"""No article is lost between windows, and none is stored twice (steppewatch/windows.py).

A property test (hypothesis) runs the rule the crawl runs — the spider's source filter
(``Window.reads``), the extractor's date choice (``resolve_published``) and the store
pipeline's ownership (``Window.owns``), with the index as the set of stored URLs — over
random articles: publication times over three days, feed times off by 0 to ±14 hours with
or without an explicit offset, feeds that list an article hours late, pages with a full
time, a naive time, a wrong naive time, only a date, or no date, in the region's zones.
They are crawled as 72 contiguous hourly scheduled runs, and again as one backfill over the
three days: either way, every article is stored exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.extract import resolve_published
from steppewatch.dates import Found
from steppewatch.models import Listed
from steppewatch.windows import Window, WindowMode

D0 = datetime(2024, 12, 2, tzinfo=UTC)
DAYS = 3
MAX_LAG = timedelta(hours=6)
FEED_KEEPS = timedelta(hours=48)
ZONES = ["Asia/Almaty", "Asia/Bishkek", "Asia/Tashkent", "Asia/Dushanbe", "Asia/Ashgabat", "UTC"]
PAGE_KINDS = ["time_with_offset", "naive_local", "naive_utc_as_local", "date_only", "none"]


@dataclass(frozen=True)
class Case:
    true_time: datetime
    feed_error_hours: int  # the feed's time is off by this many hours
    feed_has_offset: bool
    lag: timedelta  # the feed lists the article this long after publication
    page: str


@st.composite
def cases(draw: st.DrawFn) -> Case:
    minutes = draw(st.integers(0, int((DAYS * timedelta(days=1) - MAX_LAG).total_seconds() // 60) - 1))
    return Case(
        true_time=D0 + timedelta(minutes=minutes),
        feed_error_hours=draw(st.integers(-14, 14)),
        feed_has_offset=draw(st.booleans()),
        lag=timedelta(minutes=draw(st.integers(0, int(MAX_LAG.total_seconds() // 60)))),
        page=draw(st.sampled_from(PAGE_KINDS)),
    )


def _feed_time(case: Case, tz: ZoneInfo) -> datetime:
    when = case.true_time + timedelta(hours=case.feed_error_hours)
    if case.feed_has_offset:
        return when.astimezone(timezone(timedelta(hours=case.feed_error_hours % 24 - 12)))
    return when.astimezone(tz)  # written without an offset, read in the site's zone


def _page_dates(case: Case, tz: ZoneInfo) -> list[Found]:
    local = case.true_time.astimezone(tz)
    if case.page == "time_with_offset":
        return [Found(case.true_time.astimezone(timezone(timedelta(hours=3))), True, True)]
    if case.page == "naive_local":
        return [Found(local, True, False)]
    if case.page == "naive_utc_as_local":  # UTC written without Z, read in the site's zone
        return [Found(case.true_time.replace(tzinfo=None).replace(tzinfo=tz), True, False)]
    if case.page == "date_only":
        return [Found(datetime(local.year, local.month, local.day, tzinfo=tz), False, False)]
    return []


def _run(window: Window, listed_now: list[tuple[int, Case]], tz: ZoneInfo, now: datetime,
         stored: dict[int, int]) -> None:
    """One crawl run: read the source, fetch what is new and listed in range, store what it owns."""
    for n, case in listed_now:
        listed_at = _feed_time(case, tz)
        if not window.reads(listed_at) or n in stored:
            continue  # not fetched: out of the source range, or already stored (the index)
        listed = Listed("feed", "http://site.test/feed", listed_at)
        published, source = resolve_published(_page_dates(case, tz), listed, tz)
        when = datetime.fromisoformat(published) if published else None
        if window.owns(when, listed_at, now, day_only=source == "page_day"):
            stored[n] = stored.get(n, 0) + 1


@settings(max_examples=60, deadline=None)
@given(st.lists(cases(), min_size=1, max_size=40), st.sampled_from(ZONES))
def test_every_article_is_stored_once_by_hourly_runs_and_by_a_backfill(articles: list[Case], zone: str) -> None:
    tz = ZoneInfo(zone)
    # 72 scheduled runs, each at the end of its hour, reading the feed as it is then
    hourly: dict[int, int] = {}
    for k in range(DAYS * 24):
        since, until = D0 + timedelta(hours=k), D0 + timedelta(hours=k + 1)
        listed_now = [(n, c) for n, c in enumerate(articles) if c.true_time + c.lag <= until < c.true_time + c.lag
                      + FEED_KEEPS]
        _run(Window(since, until, WindowMode.DISCOVER), listed_now, tz, until, hourly)
    assert hourly == {n: 1 for n in range(len(articles))}

    # one backfill over the three days, later, reading a sitemap that lists every article
    backfill: dict[int, int] = {}
    later = D0 + timedelta(days=30)
    _run(Window(D0, D0 + timedelta(days=DAYS), WindowMode.BACKFILL), list(enumerate(articles)), tz, later, backfill)
    assert backfill == {n: 1 for n in range(len(articles))}

    # and both, sharing the index: still once each
    _run(Window(D0, D0 + timedelta(days=DAYS), WindowMode.BACKFILL), list(enumerate(articles)), tz, later, hourly)
    assert hourly == {n: 1 for n in range(len(articles))}


def test_contiguous_backfill_days_share_edge_articles_through_the_index() -> None:
    # an article at 23:30 UTC is owned by its own day and, within the tolerance, by the next
    tz = ZoneInfo("Asia/Almaty")
    at = datetime(2024, 12, 3, 23, 30, tzinfo=UTC)
    day1 = Window(datetime(2024, 12, 3, tzinfo=UTC), datetime(2024, 12, 4, tzinfo=UTC))
    day2 = Window(datetime(2024, 12, 4, tzinfo=UTC), datetime(2024, 12, 5, tzinfo=UTC))
    assert day1.owns(at, None, D0) and day2.owns(at, None, D0)
    far = datetime(2024, 12, 6, tzinfo=tz)
    assert not day1.owns(far, far, D0)


def test_a_naive_page_time_whole_hours_off_an_explicit_feed_time_gives_way() -> None:
    tz = ZoneInfo("Asia/Almaty")
    feed = datetime(2024, 12, 3, 9, 0, tzinfo=UTC)
    page_naive = Found(datetime(2024, 12, 3, 9, 0, tzinfo=tz), True, False)  # UTC written without Z
    assert resolve_published([page_naive], Listed("feed", "f", feed), tz) == (feed.isoformat(), "feed")
    page_explicit = Found(datetime(2024, 12, 3, 9, 0, tzinfo=timezone(timedelta(hours=5))), True, True)
    assert resolve_published([page_explicit], Listed("feed", "f", feed), tz)[1] == "page"
    # a feed without an offset does not overrule the page
    feed_naive = datetime(2024, 12, 3, 9, 0).replace(tzinfo=tz)
    page_other = Found(datetime(2024, 12, 3, 14, 0, tzinfo=tz), True, False)
    assert resolve_published([page_other], Listed("feed", "f", feed_naive), tz)[1] == "page"


def test_a_date_only_page_takes_the_feeds_time_on_that_day() -> None:
    tz = ZoneInfo("Asia/Almaty")
    feed = datetime(2024, 12, 3, 9, 40, tzinfo=UTC)  # 14:40 in Almaty
    day = Found(datetime(2024, 12, 3, tzinfo=tz), False, False)
    assert resolve_published([day], Listed("feed", "f", feed), tz) == (feed.isoformat(), "feed")
    other_day = Found(datetime(2024, 12, 1, tzinfo=tz), False, False)
    published, source = resolve_published([other_day], Listed("feed", "f", feed), tz)
    assert source == "page_day" and published == "2024-12-01T00:00:00+05:00"
