"""Digest periods from a cron schedule in a time zone (croniter, as Airflow uses it)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def validate_cron(expression: str) -> None:
    from croniter import croniter

    if not croniter.is_valid(expression):
        raise ValueError(f"not a cron expression: {expression!r}")


def last_period(expression: str, timezone: str, now: datetime) -> tuple[datetime, datetime]:
    """The most recent complete period [start, end) of the schedule before ``now`` (UTC)."""
    from croniter import croniter

    local = now.astimezone(ZoneInfo(timezone))
    it = croniter(expression, local)
    end = it.get_prev(datetime)
    start = it.get_prev(datetime)
    return start.astimezone(UTC), end.astimezone(UTC)


def next_due(expression: str, timezone: str, now: datetime) -> datetime:
    """When the schedule next closes a period after ``now`` (UTC): the digest's next sending."""
    from croniter import croniter

    return croniter(expression, now.astimezone(ZoneInfo(timezone))).get_next(datetime).astimezone(UTC)
