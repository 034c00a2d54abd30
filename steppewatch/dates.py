"""Dates as the region's sites write them, read the same way for feeds, sitemaps and pages.

One parser (``parse_date``) for every source: ISO 8601 and RFC 2822 as machines write
them; day-first numeric dates (03.12.2024, the region never writes month-first); Russian,
Kazakh, Uzbek (Latin and Cyrillic), Kyrgyz and Tajik month names as well as English
(3 декабря 2024, 2024 жылғы 3 желтоқсан, 3-dekabr 2024); a naive value is in the site's
time zone (the registry's ``timezone``: Asia/Almaty is UTC+5, Asia/Bishkek UTC+6…). A
value outside the sanity range — before 1990, or more than a day after the reference
time (the fetch) — is not a date: 1900-01-01 placeholders and 9999-12-31 "never expires"
values are refused in every form, so one of them cannot drop an article or a source.

``Found`` keeps what the value said: whether it had a time and whether it carried an
explicit offset, which is what decides between a page and its feed when they disagree
(a value without an offset is given the site's ZoneInfo, so a bare datetime keeps that
too: ``has_explicit_offset``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser

EARLIEST_YEAR = 1990
# a date may run ahead of the fetch by a time-zone difference, not more
MAX_AHEAD = timedelta(days=1)


@dataclass(frozen=True)
class Found:
    """A date read from a source: aware, with what the source actually wrote."""

    when: datetime
    has_time: bool = True
    has_offset: bool = True

    def iso(self) -> str:
        return self.when.isoformat() if self.has_time else self.when.date().isoformat()


# Month names by their stems: genitive and nominative forms, Latin and Cyrillic spellings.
_MONTH_STEMS = {
    1: ("январ", "қаңтар", "yanvar", "jan"),
    2: ("феврал", "ақпан", "fevral", "feb"),
    3: ("март", "наурыз", "mart", "mar"),
    4: ("апрел", "сәуір", "aprel", "apr"),
    5: ("мая", "май", "мамыр", "may"),
    6: ("июн", "маусым", "iyun", "jun", "июн"),
    7: ("июл", "шілде", "iyul", "jul"),
    8: ("август", "тамыз", "avgust", "aug"),
    9: ("сентябр", "қыркүйек", "sentabr", "sentyabr", "sep"),
    10: ("октябр", "қазан", "oktabr", "oktyabr", "oct"),
    11: ("ноябр", "қараша", "noyabr", "nov"),
    12: ("декабр", "желтоқсан", "dekabr", "dec"),
}
_MONTH_WORD = re.compile(
    r"\b(" + "|".join(sorted({s for stems in _MONTH_STEMS.values() for s in stems}, key=len, reverse=True))
    + r")[a-zа-яёәғқңөұүһіўҳқ']*\.?", re.IGNORECASE)
_STEM_MONTH = {stem: month for month, stems in _MONTH_STEMS.items() for stem in stems}
_TIME = r"(?:\D{1,8}?(\d{1,2})[:.](\d{2})(?::(\d{2}))?)?"
# 3 декабря 2024 [, 14:05]; 3-dekabr, 2024
_DAY_MONTH_YEAR = re.compile(r"(?<!\d)(\d{1,2})(?:-?(?:го|ші|chi|-chi))?[\s\-.,]*M(\d{1,2})M[\s,.\-]*(\d{4})" + _TIME)
# 2024 жылғы 3 желтоқсан; 2024-yil 3-dekabr
_YEAR_DAY_MONTH = re.compile(
    r"(\d{4})[\s\-]*(?:ж\.|жылғы|жыл|yil|йил|г\.|года|год)?[\s\-,]*(\d{1,2})[\s\-.]*M(\d{1,2})M" + _TIME)
# 03.12.2024 [14:05]; 3/12/2024
_NUMERIC_DAY_FIRST = re.compile(r"(?<!\d)(\d{1,2})[./](\d{1,2})[./](\d{4})" + _TIME)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_HAS_TIME = re.compile(r"\d:\d\d")


def _month_marked(value: str) -> str:
    """The value with each month name replaced by its number between M marks: M12M."""
    def number(match: re.Match[str]) -> str:
        word = match.group(1).lower()
        return f"M{_STEM_MONTH[word]}M"
    return _MONTH_WORD.sub(number, value)


def _build(year: str, month: str, day: str, hour: str | None, minute: str | None,
           second: str | None) -> tuple[datetime, bool] | None:
    try:
        if hour is None:
            return datetime(int(year), int(month), int(day)), False
        return datetime(int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0)), True
    except ValueError:
        return None


def _parse_naive_or_aware(value: str) -> tuple[datetime, bool, bool] | None:
    """(datetime, has_time, has_offset), the datetime aware only if the value had an offset."""
    if _ISO_DAY.fullmatch(value):
        return datetime.fromisoformat(value), False, False
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        return dt, True, dt.tzinfo is not None
    except ValueError:
        pass
    if re.search(r"[a-zA-Z]{3}, \d", value):  # RFC 2822, as feeds write it
        try:
            dt = parsedate_to_datetime(value)
            if dt is not None:
                return dt, True, dt.tzinfo is not None
        except (TypeError, ValueError, IndexError):
            pass
    marked = _month_marked(value)
    for pattern, order in ((_DAY_MONTH_YEAR, (2, 1, 0)), (_YEAR_DAY_MONTH, (0, 2, 1)),
                           (_NUMERIC_DAY_FIRST, (2, 1, 0))):
        match = pattern.search(marked)
        if match:
            groups = match.groups()
            year, month, day = (groups[i] for i in order)
            built = _build(year, month, day, *groups[3:6])
            if built:
                return built[0], built[1], False
    if not value.isascii():
        return None  # a form of the region's languages not understood: do not guess
    try:  # English forms (Dec 3, 2024 2:05 PM), day-first where numbers are ambiguous
        dt = dateparser.parse(value, dayfirst=True)
    except (ValueError, OverflowError, TypeError):
        return None
    if dt is None:
        return None
    return dt, bool(_HAS_TIME.search(value)), dt.tzinfo is not None


def parse_date(value: str | None, tz: ZoneInfo, now: datetime | None = None,
               earliest: date | None = None) -> Found | None:
    """Read one date; None if there is none or it is outside the sanity range. Never raises.

    ``now`` is the reference time (the fetch); without it the upper bound is the clock.
    ``earliest`` raises the lower bound (the site's founding day, from the registry).
    """
    if not value or not value.strip():
        return None
    value = value.strip()[:200]
    try:
        parsed = _parse_naive_or_aware(value)
        if parsed is None:
            return None
        dt, has_time, has_offset = parsed
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz)
        elif not has_time:
            dt = datetime.combine(dt.date(), time(0), tzinfo=tz)
        ahead = (now or datetime.now(UTC)) + MAX_AHEAD
        if dt.year < EARLIEST_YEAR or dt.astimezone(UTC) > ahead or (earliest and dt.date() < earliest):
            return None
    except (ValueError, OverflowError, TypeError):  # 9999-12-31 in a far zone, and the like
        return None
    return Found(dt, has_time, has_offset)


def has_explicit_offset(dt: datetime) -> bool:
    """Whether an aware datetime from ``parse_date`` (or built in a site's zone) came with
    its own offset: values without one get the site's ZoneInfo, values with one a fixed
    offset. Kept in the datetime itself so that it survives the crawl's request queues."""
    return dt.tzinfo is not None and not isinstance(dt.tzinfo, ZoneInfo)


def whole_hours_apart(a: datetime, b: datetime, max_hours: int = 14) -> int:
    """How many whole hours (1..max_hours) a and b differ by, or 0: the mark of a local
    time read as UTC or the other way round."""
    seconds = abs((a - b).total_seconds())
    hours = round(seconds / 3600)
    return hours if 1 <= hours <= max_hours and abs(seconds - hours * 3600) <= 60 else 0
