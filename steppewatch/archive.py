"""The archive: what is stored, written in an order that survives a crash at any point.

Every article goes through ``Archive.commit``, which keeps the object store and the index
(``steppewatch.index``, SQL only) in agreement:

1. objects under keys nothing points at yet are written first (a new record and its raw
   page, an alias object, a kept version, a staged new version);
2. the index commits, together with one ``pending_writes`` row for every delete and
   in-place rewrite the commit decided (an earlier original taking over drops the old
   record; a new version replaces the record at its key; joined stories rewrite their
   members' ``story_id``);
3. only then are those carried out, and their rows removed.

A crash before 2 leaves objects no index row names, which the rerun writes again (the
same keys, the same bytes) and ``reindex`` reads as the state the rerun would reach; a
crash after 2 leaves rows that the next run carries out first (``repair``). Nothing the
index points at is ever deleted before the index stops pointing at it, so no retry finds
a missing object and no ``reindex`` is needed.

Writers of one id are serialised by the database (the writers' lock on SQLite, an
advisory lock on PostgreSQL), so two runs storing one URL with different texts make one
record and one version, and store and index agree.

Subscribers learn of story merges inside the commit's transaction (``on_merge``): the
alert outbox moves a rule's pending alert to the story it joined.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Connection

from steppewatch import dedup
from steppewatch.index import Index, order_key
from steppewatch.layout import (
    RECORD_PREFIXES,
    alias_key,
    article_key,
    manifest_key,
    parse_record_key,
    raw_key,
    staging_key,
    storage_day,
    version_key,
)
from steppewatch.models import Article
from steppewatch.records import BadRecord, RecordReader
from steppewatch.redaction import redact_text
from steppewatch.store import Store

logger = logging.getLogger(__name__)

# (transaction, the story that stays, the story that joins it): called for every story merge
MergeHook = Callable[[Connection, str, str], None]


class Outcome(StrEnum):
    STORED = "stored"        # a new record
    UPDATED = "updated"      # same URL, new text: a new version
    UNCHANGED = "unchanged"  # re-checked, same text: nothing written
    ALIAS = "alias"          # same text as another record: recorded as its alias
    DUPLICATE = "duplicate"  # another process stored this very article meanwhile


@dataclass(frozen=True)
class Committed:
    outcome: Outcome
    article_id: str
    story_id: str
    keys: tuple[str, ...] = ()  # every record or page this commit wrote or rewrote
    alias_of: str | None = None
    deleted: tuple[str, ...] = ()


@dataclass
class _Plan:
    """What one commit does to the store: before its transaction commits, and after."""

    puts: list[tuple[str, bytes, str, str | None, dict[str, str] | None]]
    after: list[dict[str, Any]]


def default_merge_hooks() -> list[MergeHook]:
    from steppewatch.alerts.outbox import follow_story_merge

    return [follow_story_merge]


class Archive:
    """The store and its index, written together (see the module docstring)."""

    def __init__(self, index: Index, store: Store, on_merge: Sequence[MergeHook] | None = None) -> None:
        self.index = index
        self.store = store
        self.on_merge = list(default_merge_hooks() if on_merge is None else on_merge)
        self._bound = False  # the index checked to belong to this store (``Index.bind_store``)

    # -- commit ------------------------------------------------------------------------------
    def commit(self, article: Article, raw: bytes, extra_urls: list[str] | None = None) -> Committed:
        """Store an extracted article once; see the module docstring for the protocol."""
        if not self._bound:
            # commands check before they start; this catches whatever did not (a crawl with
            # DEDUP_ENABLED off, a library caller): an index of another store stores nothing
            self.index.bind_store(self.store)
            self._bound = True
        if self.index.has_pending():  # a crash left writes undone: finish them before writing more
            self.repair()
        now = datetime.now(UTC)
        day = storage_day(article)
        forms = {article.url, article.canonical_url, *(extra_urls or [])}
        # CPU work before the transaction: concurrent crawls then hold the write lock (all of
        # SQLite, rows of PostgreSQL) for the inserts alone
        ev = dedup.evidence(article.text, article.language)
        hashes = dedup.band_hashes(dedup.signature(ev.shingles))
        compressed = _gzip(raw)
        with self.index.writing() as conn:
            plan = _Plan([], [])
            result = self._decide(conn, plan, article, compressed, forms, day, now, ev, hashes)
            for key, data, content_type, encoding, meta in plan.puts:
                self.store.put(key, data, content_type, content_encoding=encoding, metadata=meta)
            queued = self.index.queue_writes(conn, plan.after)
        self._carry_out(queued)
        return result

    def _decide(self, conn: Connection, plan: _Plan, article: Article, compressed: bytes, forms: set[str],
                day: str, now: datetime, ev: dedup.Evidence, hashes: list[int]) -> Committed:
        existing = self.index.article_row(conn, article.id)
        if existing is not None:
            return self._known(conn, plan, existing, article, compressed, forms, now, ev)
        owner = self.index.claim_content(conn, article.content_hash, article.id)
        if owner == article.id:
            # a concurrent run committed this same article between our checks
            self.index.add_urls(conn, article.id, forms)
            return Committed(Outcome.DUPLICATE, article.id, self.index.story_of(conn, article.id))
        if owner is not None:
            return self._alias(conn, plan, article, compressed, owner, forms, day, now, ev)
        matched = self.index.matching_stories(conn, ev, article.language, article.site, day, hashes)
        matched = sorted({*matched, *self.index.edition_stories(conn, article, forms)})
        story = self.index.story_holder(conn, article, matched)
        merged = self._merge(conn, plan, story, [m for m in matched if m != story])
        record = _record(article, story, version=1, versions=[])
        record["urls"] = sorted(forms)
        keys = (raw_key(article.site, day, article.id), article_key(article.site, day, article.id))
        meta = _meta(article)
        plan.puts += [(keys[0], compressed, "text/html", "gzip", meta),
                      (keys[1], _json(record), "application/json", None, meta)]
        self.index.insert_article(conn, article, story, day, keys[1], now, alias_of=None, version=1)
        self.index.insert_shingles(conn, article.id, article.language, day, story, ev, hashes)
        self.index.add_urls(conn, article.id, forms)
        self.index.add_editions(conn, article.id, article.editions)
        return Committed(Outcome.STORED, article.id, story, (*keys, *merged))

    def _known(self, conn: Connection, plan: _Plan, row: Any, article: Article, compressed: bytes,
               forms: set[str], now: datetime, ev: dedup.Evidence) -> Committed:
        self.index.add_urls(conn, row.id, forms)
        if row.content_hash == article.content_hash or row.alias_of is not None:
            self.index.mark_checked(conn, row.id, now)
            return Committed(Outcome.UNCHANGED, row.id, row.story_id)
        # same URL, new text: the old version is kept under versioned keys (new keys), the new
        # one staged and moved over the record's key once the index says so
        old = json.loads(self.store.get(row.key))
        v = int(old.get("version", 1))
        kept_record = version_key(row.site, row.day, row.id, v, "json")
        kept_raw = version_key(row.site, row.day, row.id, v, "html.gz")
        plan.puts.append((kept_record, _json(old), "application/json", None, _meta(article)))
        try:
            plan.puts.append((kept_raw, self.store.get(raw_key(row.site, row.day, row.id)), "text/html", "gzip", None))
        except FileNotFoundError:
            kept_raw = ""
        versions = list(old.get("versions") or [
            {"version": v, "content_hash": old.get("content_hash"), "fetched_at": old.get("fetched_at")}])
        versions[-1] = {**versions[-1], "key": kept_record, "raw_key": kept_raw}
        versions.append({"version": v + 1, "content_hash": article.content_hash, "fetched_at": article.fetched_at,
                         "key": row.key})
        record = _record(article, row.story_id, version=v + 1, versions=versions)
        record["urls"] = sorted({*old.get("urls", []), *forms})
        record["first_fetched_at"] = old.get("first_fetched_at") or old.get("fetched_at")
        # the record stays filed under its first day, so its key never moves
        staged_raw = staging_key(row.site, row.day, row.id, v + 1, "html.gz")
        staged_record = staging_key(row.site, row.day, row.id, v + 1, "json")
        plan.puts += [(staged_raw, compressed, "text/html", "gzip", _meta(article)),
                      (staged_record, _json(record), "application/json", None, _meta(article))]
        plan.after += [{"action": "promote", "key": raw_key(row.site, row.day, row.id), "source": staged_raw},
                       {"action": "promote", "key": row.key, "source": staged_record}]
        self.index.record_version(conn, row, article, v + 1, now, ev)
        self.index.add_editions(conn, row.id, article.editions)
        story, merged = self._join_editions(conn, plan, article, row.story_id, forms)
        return Committed(Outcome.UPDATED, row.id, story,
                         (kept_record, kept_raw, raw_key(row.site, row.day, row.id), row.key,
                          *[k for k in merged if k != row.key]))

    def _alias(self, conn: Connection, plan: _Plan, article: Article, compressed: bytes, owner: str,
               forms: set[str], day: str, now: datetime, ev: dedup.Evidence) -> Committed:
        target = self.index.article_row(conn, owner)
        if target is not None and target.alias_of is None and _precedes(article, target):
            return self._take_over(conn, plan, article, compressed, target, forms, day, now, ev)
        story = target.story_id if target is not None else owner
        key = alias_key(article.site, day, article.id)
        plan.puts.append((key, _json(_alias_record(article, owner, story, forms)), "application/json", None,
                          _meta(article)))
        self.index.insert_article(conn, article, story, day, key, now, alias_of=owner, version=1)
        self.index.add_urls(conn, article.id, forms)
        return Committed(Outcome.ALIAS, article.id, story, (key,), alias_of=owner)

    def _take_over(self, conn: Connection, plan: _Plan, article: Article, compressed: bytes, old: Any,
                   forms: set[str], day: str, now: datetime, ev: dedup.Evidence) -> Committed:
        """The earlier publication of a text holds the record, whatever order runs find them in.

        The newcomer is stored in full; the previous holder becomes its alias (an alias
        object under a new key; its record and raw page are deleted after the commit), so
        the store ends up the same whichever site a crawl reached first.
        """
        story = old.story_id
        record = _record(article, story, version=1, versions=[])
        record["urls"] = sorted(forms)
        keys = (raw_key(article.site, day, article.id), article_key(article.site, day, article.id))
        meta = _meta(article)
        old_record = json.loads(self.store.get(old.key))
        previous = _article_from(old_record)
        previous_urls = set(old_record.get("urls") or [previous.url, previous.canonical_url])
        old_alias_key = alias_key(old.site, old.day, old.id)
        gone = (raw_key(old.site, old.day, old.id), old.key)
        plan.puts += [(keys[0], compressed, "text/html", "gzip", meta),
                      (keys[1], _json(record), "application/json", None, meta),
                      (old_alias_key, _json(_alias_record(previous, article.id, story, previous_urls)),
                       "application/json", None, _meta(previous))]
        plan.after += [{"action": "delete", "key": key} for key in gone]
        self.index.hand_over(conn, old, article.id, old_alias_key)
        self.index.insert_article(conn, article, story, day, keys[1], now, alias_of=None, version=1)
        self.index.insert_shingles(conn, article.id, article.language, day, story, ev)
        self.index.add_urls(conn, article.id, forms)
        merged: list[str] = []
        if self.index.story_holder(conn, article, [story]) == article.id:  # the story's earliest publication now
            merged = [k for k in self._merge(conn, plan, article.id, [story]) if k not in keys]
            story = article.id
        self.index.add_editions(conn, article.id, article.editions)
        story, joined = self._join_editions(conn, plan, article, story, forms)
        merged = sorted({*merged, *(k for k in joined if k not in keys)} - set(gone))
        return Committed(Outcome.STORED, article.id, story, (*keys, old_alias_key, *merged), deleted=gone)

    def _join_editions(self, conn: Connection, plan: _Plan, article: Article, story: str,
                       forms: set[str]) -> tuple[str, list[str]]:
        """Join ``story`` (the article's) with its editions' stories; the story id and the keys rewritten."""
        found = [s for s in self.index.edition_stories(conn, article, forms) if s != story]
        if not found:
            return story, []
        holder = self.index.story_holder(conn, article, [story, *found])
        return holder, self._merge(conn, plan, holder, [s for s in [story, *found] if s != holder])

    def _merge(self, conn: Connection, plan: _Plan, primary: str, others: list[str]) -> list[str]:
        """Join stories under ``primary`` (single-link): rows now, records after the commit.

        Subscribers move what follows a story (a rule's alert row), in this transaction.
        """
        keys: list[str] = []
        for other in others:
            for article_id, key in self.index.move_story(conn, primary, other):
                plan.after.append({"action": "restory", "key": key, "article_id": article_id})
                keys.append(key)
            for hook in self.on_merge:
                hook(conn, primary, other)
        return keys

    # -- after the commit ----------------------------------------------------------------------
    def _carry_out(self, ids: list[int]) -> None:
        if ids:
            for write in self.index.pending(ids):
                self._perform(write)

    def repair(self) -> int:
        """Carry out the writes a crashed commit left in ``pending_writes``; returns how many."""
        done = 0
        for write in self.index.pending():
            done += self._perform(write)
        return done

    def _perform(self, write: Any) -> int:
        """One pending write, idempotent (another process may be doing the same one)."""
        try:
            if write.action == "delete":
                self.store.delete(write.key)
            elif write.action == "promote":
                try:
                    data = self.store.get(write.source)
                except FileNotFoundError:  # promoted already (by this row's other runner)
                    data = None
                if data is not None:
                    json_record = write.key.endswith(".json")
                    self.store.put(write.key, data, "application/json" if json_record else "text/html",
                                   content_encoding=None if json_record else "gzip")
                    self.store.delete(write.source)
            elif write.action == "restory":
                story = self.index.current_story(write.article_id)
                try:
                    record = json.loads(self.store.get(write.key))
                except FileNotFoundError:  # taken over and deleted since: nothing to rewrite
                    record = None
                if story is not None and record is not None and record.get("story_id") != story:
                    record["story_id"] = story
                    self.store.put(write.key, _json(record), "application/json")
        except Exception as exc:  # noqa: BLE001 — the commit stands; the row stays for the next run
            logger.warning("store write left for the next run (%s %s): %s", write.action, write.key, exc)
            return 0
        self.index.done(write.id)
        return 1

    # -- rebuild -------------------------------------------------------------------------------
    def rebuild(self, reader: RecordReader | None = None) -> dict[str, int]:
        """Rebuild the article rows from the records in the store (records carry their story ids).

        Writes a crash left undone are finished first. Every record is read and its story evidence
        computed next; then one write transaction empties the tables and fills them again,
        so readers see the old index or the new one, never a half-emptied one. Crawls may
        run beside it: their commits queue behind that transaction (the writers' lock file on
        SQLite, a table lock on PostgreSQL), and records a crawl stored while the rest were
        read are picked up inside it. An unreadable record is skipped and named
        (``reader.skipped``), never fatal.

        The index is bound to this store in the same transaction (``Index.rebind``): this is
        the way to move an index to another store. Writes a crash left for the store the index
        belonged to are not carried out on this one.
        """
        bound = self.index.bound_store()
        if bound is None or bound == self.store.identity:
            self.repair()
        reader = reader or RecordReader(self.store)
        seen: set[str] = set()
        prepared: list[tuple[str, dict[str, Any], dedup.Evidence | None]] = []

        def prepare(keys: list[str]) -> None:
            new = [k for k in keys if k not in seen]
            seen.update(new)  # an unreadable one too: it is named once
            for key, record in reader.each(new):
                alias = parse_record_key(key).is_alias
                text = "" if alias else str(record.get("text") or "")
                prepared.append((key, record, None if alias else dedup.evidence(text, record.get("language"))))

        def record_keys() -> list[str]:
            return [k for prefix in RECORD_PREFIXES for k in self.store.list(prefix) if parse_record_key(k) is not None]

        prepare(record_keys())
        with self.index.writing() as conn:
            prepare(record_keys())  # what a crawl stored while the others were read
            self.index.empty(conn)
            left = self.index.rebind(conn, self.store)
            counts = {"records": 0, "aliases": 0}
            for key, record, sh in _one_per_id(prepared, reader):
                try:
                    article = _article_from({**record, "text": "", "authors": [], "tags": []} if sh is None
                                            else record)
                    self.index.restore(conn, key, article, record, parse_record_key(key).day.isoformat(), sh)
                except (TypeError, ValueError, KeyError) as exc:
                    reader.skipped.append(BadRecord(key, f"cannot be indexed: {exc}"))
                    continue
                counts["aliases" if sh is None else "records"] += 1
        if left is not None and left != self.store.identity:
            logger.warning("the index belonged to store %s; rebuilt from store %s and bound to it",
                           redact_text(left), redact_text(self.store.identity))
        return {**counts, **reader.counts()}


def put_manifest(store: Store, run_id: str, manifest: dict[str, Any]) -> str:
    """A run's manifest (what it wrote and deleted, its counts) under ``runs/<run id>.json``."""
    key = manifest_key(run_id)
    store.put(key, json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"), "application/json")
    return key


def _one_per_id(prepared: list[tuple[str, dict[str, Any], dedup.Evidence | None]],
                reader: RecordReader) -> list[tuple[str, dict[str, Any], dedup.Evidence | None]]:
    """One record per article id, the others named as skipped.

    A crash between the objects of a take-over and its commit leaves the old holder both as
    a record and as an alias of the newcomer: the alias wins when the newcomer's record is
    stored (the state the rerun reaches), the record otherwise. Between two records: the
    newer version, then the later fetch.
    """
    records = {record["id"] for _key, record, sh in prepared if sh is not None}
    # ids whose alias object points at a stored record: a take-over whose commit may not have landed
    taken_over = {record["id"] for _key, record, sh in prepared
                  if sh is None and record.get("alias_of") in records and record.get("alias_of") != record["id"]}

    def rank(item: tuple[str, dict[str, Any], dedup.Evidence | None]) -> tuple[bool, int, str]:
        _key, record, sh = item
        if sh is None:
            return (record["id"] in taken_over, 0, "")
        return (record["id"] not in taken_over, int(record.get("version") or 1), str(record.get("fetched_at") or ""))

    best: dict[str, tuple[str, dict[str, Any], dedup.Evidence | None]] = {}
    for item in prepared:
        held = best.get(item[1]["id"])
        if held is None or rank(item) > rank(held):
            best[item[1]["id"]] = item
            item, held = held, item
        if item is not None:
            reader.skipped.append(BadRecord(item[0], f"another record of article {item[1]['id']} is kept: {held[0]}"))
    return sorted(best.values(), key=lambda item: item[0])


def _record(article: Article, story: str, version: int, versions: list[dict[str, Any]]) -> dict[str, Any]:
    record = article.to_dict()
    record.update(story_id=story, version=version, updated=version > 1, versions=versions)
    return record


def _article_from(record: dict[str, Any]) -> Article:
    fields = Article.__dataclass_fields__
    return Article(**{k: v for k, v in record.items() if k in fields})


def _precedes(article: Article, row: Any) -> bool:
    """Whether ``article`` is the earlier publication than the indexed ``row`` (ties: smaller id)."""
    return order_key(article.published_dt, article.id) < order_key(row.published, row.id)


def _alias_record(article: Article, owner: str, story: str, forms: set[str]) -> dict[str, Any]:
    return {
        "id": article.id, "alias_of": owner, "story_id": story, "site": article.site, "url": article.url,
        "canonical_url": article.canonical_url, "title": article.title, "published": article.published,
        "date_source": article.date_source, "language": article.language, "content_hash": article.content_hash,
        "fetched_at": article.fetched_at, "http_status": article.http_status, "urls": sorted(forms),
    }


def _gzip(raw: bytes) -> bytes:
    # level 6 (zlib's default): a third of level 9's time, a few percent larger
    return gzip.compress(raw, compresslevel=6, mtime=0)


def _json(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")


def _meta(article: Article) -> dict[str, str]:
    return {"site": article.site, "published": article.published or "", "content-hash": article.content_hash}
