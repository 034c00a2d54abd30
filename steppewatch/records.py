"""Reading stored records, where one unreadable object must never stop the rest.

A record can be truncated by a full disk, edited by hand, written by an older version or
left half-copied by a sync tool. Every command that reads many records (``reindex``,
``export``, ``reprocess``, ``alerts match``) reads them through ``RecordReader``: a record
that cannot be read is skipped, counted, and named with its key and the reason, and the
command carries on with the others.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from steppewatch.layout import parse_record_key
from steppewatch.store import Store

# what every record and alias carries; anything else is optional or has a default
REQUIRED = ("id", "site", "url", "content_hash", "story_id")


class BadRecord(ValueError):
    """A stored object that is not a readable record; ``str()`` names its key and why."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


def parse_record(key: str, data: bytes) -> dict[str, Any]:
    """The record stored under ``key``, checked; raises ``BadRecord``."""
    try:
        record = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRecord(key, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BadRecord(key, f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(record, dict):
        raise BadRecord(key, f"not a JSON object but {type(record).__name__}")
    missing = [name for name in REQUIRED if not isinstance(record.get(name), str) or not record[name]]
    if missing:
        raise BadRecord(key, f"field(s) missing or not text: {', '.join(missing)}")
    for name in ("published", "fetched_at", "first_fetched_at"):
        value = record.get(name)
        if value is None:
            continue
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise BadRecord(key, f"field {name}: not an ISO date-time: {value!r}") from None
    parsed = parse_record_key(key)
    if parsed is not None and parsed.article_id != record["id"]:
        raise BadRecord(key, f"field id: {record['id']!r} is not the id its key names ({parsed.article_id})")
    return record


@dataclass
class RecordReader:
    """Reads records from a store, skipping (and remembering) those that cannot be read."""

    store: Store
    skipped: list[BadRecord] = field(default_factory=list)

    def read(self, key: str) -> dict[str, Any] | None:
        """The record, or None when it is unreadable (then remembered in ``skipped``)."""
        try:
            data = self.store.get(key)
        except FileNotFoundError:
            self.skipped.append(BadRecord(key, "listed but gone (deleted while being read?)"))
            return None
        except OSError as exc:
            self.skipped.append(BadRecord(key, f"unreadable: {exc.strerror or exc}"))
            return None
        try:
            return parse_record(key, data)
        except BadRecord as bad:
            self.skipped.append(bad)
            return None

    def each(self, keys: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        for key in keys:
            record = self.read(key)
            if record is not None:
                yield key, record

    def counts(self) -> dict[str, int]:
        return {"skipped_unreadable": len(self.skipped)} if self.skipped else {}

    def report(self, out: IO[str] | None = None) -> None:
        """Name every skipped record on stderr (one line each: key, then reason)."""
        out = out or sys.stderr
        for bad in self.skipped:
            print(f"skipped unreadable record {bad}", file=out)
