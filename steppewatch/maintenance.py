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
import json
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

from pipelines.extract import extract_page
from steppewatch.index import Index
from steppewatch.models import Listed, Rejection
from steppewatch.registry import Registry, adhoc_site
from steppewatch.store import Store, check_key, raw_key


def _key_parts(key: str) -> tuple[str, str, str]:
    """(site, day, article id) of an ``articles/site=<id>/date=<D>/<aid>.json`` key."""
    _, site_part, date_part, name = key.split("/")
    return site_part.removeprefix("site="), date_part.removeprefix("date="), name.removesuffix(".json")


def _article_keys(store: Store, sites: list[str] | None) -> list[str]:
    prefixes = [f"articles/site={s}/" for s in sites] if sites else ["articles/"]
    return [k for p in prefixes for k in store.list(p) if k.endswith(".json")]


def reprocess(store: Store, index: Index, registry: Registry, since: datetime, until: datetime,
              sites: list[str] | None = None) -> dict[str, int]:
    counts: Counter[str] = Counter()
    first, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    known = {s.id: s for s in registry.sites}
    for key in _article_keys(store, sites):
        site_id, day, aid = _key_parts(key)
        d = date.fromisoformat(day)
        if not (first <= d and (d < last or (d == last and until.astimezone(UTC).time() != datetime.min.time()))):
            continue
        record = json.loads(store.get(key))
        try:
            raw = gzip.decompress(store.get(raw_key(site_id, day, aid)))
        except FileNotFoundError:
            counts["missing_raw"] += 1
            continue
        site = known.get(site_id) or adhoc_site(record["url"])
        listed = None
        if record.get("date_source") in ("feed", "sitemap", "listing") and record.get("published"):
            listed = Listed(record["date_source"], (record.get("source") or {}).get("url", ""),
                            datetime.fromisoformat(record["published"]))
        result = extract_page(raw, record["url"], site, status=record.get("http_status") or 200,
                              listed=listed, fetched_at=datetime.fromisoformat(record["fetched_at"]))
        counts["examined"] += 1
        if isinstance(result, Rejection):
            counts[f"now_rejected/{result.reason.value}"] += 1
            continue
        if result.content_hash == record["content_hash"]:
            counts["unchanged"] += 1
            continue
        result.source = record.get("source") or {}
        committed = index.commit(result, raw, store)
        counts[committed.outcome.value] += 1
    return dict(counts)


ARROW_FIELDS = ("id", "url", "canonical_url", "title", "text", "published", "date_source", "language",
                "authors", "description", "tags", "sitename", "fetched_at", "http_status", "content_hash",
                "story_id", "version", "updated")


def export_day(store: Store, day: str, sites: list[str] | None = None) -> list[str]:
    """Write the Parquet files for one day; return their keys."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    date.fromisoformat(day)  # a clear error for a bad --date before anything is read
    by_site: dict[str, list[dict[str, Any]]] = {}
    for key in _article_keys(store, sites):
        site_id, key_day, _ = _key_parts(key)
        if key_day == day:
            by_site.setdefault(site_id, []).append(json.loads(store.get(key)))
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
        key = check_key(f"datasets/articles/site={site_id}/date={day}/part-0.parquet")
        store.put(key, buffer.getvalue(), "application/vnd.apache.parquet")
        written.append(key)
    return written
