"""One date parser for feeds, sitemaps and pages: the region's forms, zones and sanity range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steppewatch.dates import EARLIEST_YEAR, has_explicit_offset, parse_date, whole_hours_apart

ALMATY = ZoneInfo("Asia/Almaty")
NOW = datetime(2024, 12, 10, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected", "has_time", "has_offset"), [
    ("2024-12-03", "2024-12-03T00:00:00+05:00", False, False),
    ("2024-12-03T14:05:00", "2024-12-03T14:05:00+05:00", True, False),
    ("2024-12-03T09:05:00Z", "2024-12-03T09:05:00+00:00", True, True),
    ("2024-12-03T14:05:00+06:00", "2024-12-03T14:05:00+06:00", True, True),
    ("Tue, 03 Dec 2024 09:00:00 +0000", "2024-12-03T09:00:00+00:00", True, True),
    ("03.12.2024", "2024-12-03T00:00:00+05:00", False, False),  # day-first, never March 12
    ("03.12.2024, 14:05", "2024-12-03T14:05:00+05:00", True, False),
    ("3/12/2024", "2024-12-03T00:00:00+05:00", False, False),
    ("3 декабря 2024", "2024-12-03T00:00:00+05:00", False, False),
    ("3 декабря 2024 г., 14:05", "2024-12-03T14:05:00+05:00", True, False),
    ("Вторник, 03 Декабрь 2024", "2024-12-03T00:00:00+05:00", False, False),
    ("5 мая 2024", "2024-05-05T00:00:00+05:00", False, False),
    ("2024 жылғы 3 желтоқсан", "2024-12-03T00:00:00+05:00", False, False),
    ("3 желтоқсан 2024, 09:15", "2024-12-03T09:15:00+05:00", True, False),
    ("3-dekabr 2024", "2024-12-03T00:00:00+05:00", False, False),
    ("2024-yil 3-dekabr", "2024-12-03T00:00:00+05:00", False, False),
    ("3 сентябр 2024", "2024-09-03T00:00:00+05:00", False, False),  # Tajik
    ("Dec 3, 2024 2:05 PM", "2024-12-03T14:05:00+05:00", True, False),
])
def test_the_regions_forms_are_read_day_first_in_the_sites_zone(
        value: str, expected: str, has_time: bool, has_offset: bool) -> None:
    found = parse_date(value, ALMATY, NOW)
    assert found is not None, value
    assert found.when.isoformat() == expected
    assert (found.has_time, found.has_offset) == (has_time, has_offset)
    assert has_explicit_offset(found.when) == has_offset


@pytest.mark.parametrize("value", ["1900-01-01", "1900-01-01T00:00:00Z", "01.01.1900", "9999-12-31",
                                   "9999-12-31T23:59:59+14:00", "Fri, 31 Dec 9999 23:59:59 +0000",
                                   "2024-12-12", "31 декабря 9999", "0000-00-00", "Сегодня, 14:05", ""])
def test_placeholders_and_far_futures_are_no_dates(value: str) -> None:
    assert parse_date(value, ALMATY, NOW) is None  # 2024-12-12 is more than a day after NOW


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gives_a_date_in_range_or_none_and_never_raises(value: str) -> None:
    found = parse_date(value, ALMATY, NOW)
    if found is not None:
        assert found.when.tzinfo is not None
        assert found.when.year >= EARLIEST_YEAR and found.when <= NOW + timedelta(days=1)


def test_whole_hours_apart() -> None:
    a = datetime(2024, 12, 3, 9, tzinfo=UTC)
    assert whole_hours_apart(a, a + timedelta(hours=5)) == 5
    assert whole_hours_apart(a, a - timedelta(hours=6, seconds=30)) == 6
    assert whole_hours_apart(a, a + timedelta(minutes=90)) == 0
    assert whole_hours_apart(a, a) == 0 and whole_hours_apart(a, a + timedelta(hours=15)) == 0


def test_a_date_before_the_sites_founding_is_no_date() -> None:
    from datetime import date

    assert parse_date("2001-05-04", ALMATY, NOW, earliest=date(2008, 1, 1)) is None
    assert parse_date("04.05.2008", ALMATY, NOW, earliest=date(2008, 1, 1)) is not None
