"""Work on what is already stored: reprocess with the current extractor, export datasets.

Neither fetches anything. ``reprocess`` re-extracts the stored raw HTML of a window and
rewrites the records whose text changed (a new version, through the index, like an
edit found by a crawl). ``export_day`` writes one Parquet file per site and day under
``datasets/articles/site=<id>/date=<D>/part-0.parquet``, hive-partitioned so DuckDB,
Spark or pandas read the whole tree with ``hive_partitioning``.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

from pipelines.extract import extract_page
from steppewatch.archive import Archive
from steppewatch.index import Index
from steppewatch.layout import dataset_key, parse_record_key, raw_key, site_prefix, window_days
from steppewatch.models import Listed, Rejection
from steppewatch.records import BadRecord, RecordReader
from steppewatch.registry import Registry, adhoc_site
from steppewatch.store import Store


def _article_keys(store: Store, sites: list[str] | None) -> list[str]:
    prefixes = [site_prefix("articles", s) for s in sites] if sites else [site_prefix("articles")]
    return [k for p in prefixes for k in store.list(p) if parse_record_key(k) is not None]


def reprocess(store: Store, index: Index, registry: Registry, since: datetime, until: datetime,
              sites: list[str] | None = None, reader: RecordReader | None = None) -> dict[str, int]:
    """Re-extract the stored pages of the records filed in [since, until)'s days.

    An unreadable record or raw page is skipped, counted and named (``reader.skipped``,
    ``missing_raw``); the others are reprocessed.
    """
    index.bind_store(store)  # an index built from another store would misjudge every record
    counts: Counter[str] = Counter()
    reader = reader or RecordReader(store)
    archive = Archive(index, store)
    known = {s.id: s for s in registry.sites}
    days = window_days(since, until)
    if days is None:
        return {}
    keys = [k for k in _article_keys(store, sites) if days[0] <= parse_record_key(k).day <= days[1]]
    for key, record in reader.each(keys):
        parsed = parse_record_key(key)
        site_id, day, aid = parsed.site, parsed.day.isoformat(), parsed.article_id
        try:
            raw = gzip.decompress(store.get(raw_key(site_id, day, aid)))
        except FileNotFoundError:
            counts["missing_raw"] += 1
            reader.skipped.append(BadRecord(raw_key(site_id, day, aid), "raw page missing: nothing to reprocess"))
            continue
        except (OSError, EOFError, zlib.error) as exc:
            counts["unreadable_raw"] += 1
            reader.skipped.append(BadRecord(raw_key(site_id, day, aid), f"raw page not gzip: {exc}"))
            continue
        site = known.get(site_id) or adhoc_site(record["url"])
        listed = None
        if record.get("date_source") in ("feed", "sitemap", "listing") and record.get("published"):
            listed = Listed(record["date_source"], (record.get("source") or {}).get("url", ""),
                            datetime.fromisoformat(record["published"]))
        fetched = datetime.fromisoformat(record["fetched_at"]) if record.get("fetched_at") else None
        result = extract_page(raw, record["url"], site, status=record.get("http_status") or 200,
                              listed=listed, fetched_at=fetched)
        counts["examined"] += 1
        if isinstance(result, Rejection):
            counts[f"now_rejected/{result.reason.value}"] += 1
            continue
        if result.content_hash == record["content_hash"]:
            counts["unchanged"] += 1
            continue
        result.source = record.get("source") or {}
        committed = archive.commit(result, raw)
        counts[committed.outcome.value] += 1
    return dict(counts)


ARROW_FIELDS = ("id", "url", "canonical_url", "title", "text", "published", "date_source", "language",
                "authors", "description", "tags", "sitename", "fetched_at", "http_status", "content_hash",
                "story_id", "version", "updated")


def export_day(store: Store, day: str, sites: list[str] | None = None,
               reader: RecordReader | None = None) -> list[str]:
    """Write the Parquet files for one day; return their keys. Unreadable records are left out
    and named in ``reader.skipped``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    date.fromisoformat(day)  # a clear error for a bad --date before anything is read
    by_site: dict[str, list[dict[str, Any]]] = {}
    reader = reader or RecordReader(store)
    wanted = date.fromisoformat(day)
    keys = [k for k in _article_keys(store, sites) if parse_record_key(k).day == wanted]
    for key, record in reader.each(keys):
        by_site.setdefault(parse_record_key(key).site, []).append(record)
    schema = pa.schema([
        ("id", pa.string()), ("url", pa.string()), ("canonical_url", pa.string()), ("title", pa.string()),
        ("text", pa.string()), ("published", pa.timestamp("us", tz="UTC")), ("date_source", pa.string()),
        ("language", pa.string()), ("authors", pa.list_(pa.string())), ("description", pa.string()),
        ("tags", pa.list_(pa.string())), ("sitename", pa.string()), ("fetched_at", pa.timestamp("us", tz="UTC")),
        ("http_status", pa.int32()), ("content_hash", pa.string()), ("story_id", pa.string()),
        ("version", pa.int32()), ("updated", pa.bool_()),
    ])
    written = []
    for site_id, records in sorted(by_site.items()):
        records.sort(key=lambda r: r["id"])
        columns: dict[str, list[Any]] = {name: [] for name in ARROW_FIELDS}
        for r in records:
            for name in ARROW_FIELDS:
                value = r.get(name)
                if name in ("published", "fetched_at") and value:
                    value = datetime.fromisoformat(value).astimezone(UTC)
                columns[name].append(value)
        table = pa.table(columns, schema=schema)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        key = dataset_key(site_id, day)
        store.put(key, buffer.getvalue(), "application/vnd.apache.parquet")
        written.append(key)
    return written
