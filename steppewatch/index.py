"""The dedup index: which URLs, texts and stories are already stored.

SQL through SQLAlchemy: a SQLite file by default (``STEPPEWATCH_INDEX_URL``, default
``sqlite:///data/index.sqlite``), PostgreSQL in deployment; the schema is managed by
Alembic (``steppewatch/migrations``) and upgraded on open. Three levels:

1. URL: every URL form of a stored article (as discovered, as fetched, canonical) maps
   to its id, so the next run does not fetch it again (``should_fetch``), apart from a
   bounded re-check of recent articles. A page extraction rejected (too short, an error
   page, a consent wall …) is remembered under its URL forms (``rejections``) and not
   fetched again until its re-check is due, on a schedule that grows
   (``FetchPolicy.rejection_recheck``); storing an article at one of those URLs forgets it.
2. Exact content: ``contents.content_hash`` is unique; an article whose text is already
   stored under another URL becomes an alias of that record (no second copy).
3. Near-duplicates: shingle sets and MinHash LSH bands find candidates for the story an
   article belongs to (``story_id``); ``dedup.same_story`` decides on each (own text
   without a site's template paragraphs, shared phrases, agreeing figures).

The store is the source of truth and the index is derived from it (``reindex``).
``commit`` writes objects and index rows in one database transaction: the unique
content row is inserted first, so a second process storing the same text waits for
the first and then becomes an alias; objects are written before the commit, so a crash
leaves no index row that would hide an unstored article.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from steppewatch import dedup
from steppewatch.errors import IndexUnavailable
from steppewatch.layout import RECORD_PREFIXES, alias_key, article_key, parse_record_key, raw_key, version_key
from steppewatch.models import Article
from steppewatch.records import BadRecord, RecordReader
from steppewatch.store import Store, redact, redact_text
from steppewatch.urls import clean_url

DEFAULT_INDEX_URL = "sqlite:///data/index.sqlite"

metadata = sa.MetaData()
articles = sa.Table(
    "articles", metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("canonical_url", sa.Text, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("published", sa.DateTime(timezone=True)),
    sa.Column("language", sa.String(16)),
    sa.Column("title", sa.Text),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("story_id", sa.String(16), nullable=False),
    sa.Column("alias_of", sa.String(16)),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_checked", sa.DateTime(timezone=True), nullable=False),
    sa.Column("checks", sa.Integer, nullable=False, server_default="1"),
)
contents = sa.Table(
    "contents", metadata,
    sa.Column("content_hash", sa.String(64), primary_key=True),
    sa.Column("article_id", sa.String(16), nullable=False),
)
urls = sa.Table(
    "urls", metadata,
    sa.Column("url_hash", sa.String(32), primary_key=True),
    sa.Column("article_id", sa.String(16), nullable=False),
)
shingles = sa.Table(
    "shingles", metadata,
    sa.Column("article_id", sa.String(16), primary_key=True),
    sa.Column("language", sa.String(16)),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("story_id", sa.String(16), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    # story evidence (migration 0009); NULL in rows written before it
    sa.Column("phrases", sa.LargeBinary),
    sa.Column("paragraphs", sa.LargeBinary),
    sa.Column("numbers", sa.LargeBinary),
)
bands = sa.Table(
    "bands", metadata,
    sa.Column("band", sa.SmallInteger, nullable=False),
    sa.Column("hash", sa.BigInteger, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("article_id", sa.String(16), nullable=False),
    sa.PrimaryKeyConstraint("band", "hash", "day", "article_id"),
    sqlite_with_rowid=False,  # one B-tree, clustered on the key (migrations 0005, 0006)
)
alert_outbox = sa.Table(
    "alert_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule", sa.String(100), nullable=False),
    sa.Column("story_id", sa.String(16), nullable=False),
    sa.Column("article_id", sa.String(16), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published", sa.DateTime(timezone=True)),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("occurrences", sa.Integer, nullable=False, server_default="1"),
    sa.Column("snippet_text", sa.Text),
    sa.Column("snippet_html", sa.Text),
    sa.Column("batch", sa.String(250)),
    sa.UniqueConstraint("rule", "story_id", name="uq_alert_rule_story"),
)
site_health = sa.Table(
    "site_health", metadata,
    sa.Column("site", sa.String(64), primary_key=True),
    sa.Column("empty_runs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rejection_rate", sa.Float),
    sa.Column("incident", sa.String(32)),
    sa.Column("detail", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
# pages extraction rejected, one row per URL form (migration 0007): not fetched again
# until due for a re-check; not derived from the store, so ``reindex`` cannot restore them
rejections = sa.Table(
    "rejections", metadata,
    sa.Column("url_hash", sa.String(32), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("first_rejected", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_checked", sa.DateTime(timezone=True), nullable=False),
    sa.Column("checks", sa.Integer, nullable=False, server_default="1"),
)
# language editions a stored article's page declares (migration 0008): the edition URL's
# key (``edition_key``) -> the declaring article, with the hreflang it was declared under
editions = sa.Table(
    "editions", metadata,
    sa.Column("url_key", sa.String(32), nullable=False),
    sa.Column("article_id", sa.String(16), nullable=False),
    sa.Column("hreflang", sa.String(16), nullable=False),
    sa.PrimaryKeyConstraint("url_key", "article_id"),
)
sa.Index("ix_alert_outbox_status", alert_outbox.c.status, alert_outbox.c.mode)
sa.Index("ix_editions_article", editions.c.article_id)
sa.Index("ix_articles_story", articles.c.story_id)
sa.Index("ix_articles_site_day", articles.c.site, articles.c.day)
sa.Index("ix_articles_content_hash", articles.c.content_hash)
sa.Index("ix_urls_article", urls.c.article_id)


_outbox_peer = alert_outbox.alias("peer")


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
    keys: tuple[str, ...] = ()
    alias_of: str | None = None
    deleted: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchPolicy:
    """When a known URL is fetched again: recent articles, a bounded number of times;
    rejected pages after the n-th interval of ``rejection_recheck`` since their n-th check
    (the last interval repeating). Empty (an Index used outside a crawl): a remembered
    rejection never stops a fetch; crawls take it from ``NEWS_REJECTION_RECHECK``."""

    recheck_within: timedelta = timedelta(hours=48)
    recheck_after: timedelta = timedelta(hours=6)
    max_rechecks: int = 1
    rejection_recheck: tuple[timedelta, ...] = ()


def rejection_schedule(value: Any) -> tuple[timedelta, ...]:
    """``NEWS_REJECTION_RECHECK`` (hours: a list, one number or "24,168,720") as intervals."""
    items = value.split(",") if isinstance(value, str) else [value] if isinstance(value, (int, float)) else value
    try:
        hours = [float(h) for h in items]
    except (TypeError, ValueError):
        hours = []
    if not hours or any(not h >= 0 for h in hours):  # `not h >= 0` also refuses NaN
        raise ValueError(f"NEWS_REJECTION_RECHECK must be a list of hours >= 0 (e.g. [24, 168, 720]), got {value!r}")
    return tuple(timedelta(hours=h) for h in hours)


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def edition_key(url: str) -> str:
    """The key a language edition is matched by: the cleaned URL with its scheme and a leading
    ``www.`` ignored (a page's alternates often spell the other edition's host or scheme
    otherwise than that page's own canonical link does)."""
    try:
        parts = urlsplit(clean_url(url))
    except ValueError:
        parts = urlsplit(url)
    host = parts.netloc.removeprefix("www.")
    return url_hash(f"{host}{parts.path}?{parts.query}")


def _spellings(url: str) -> set[str]:
    """The forms an edition URL may be stored under in ``urls``: either scheme, with or without ``www.``."""
    parts = urlsplit(url)
    host = parts.netloc.removeprefix("www.")
    return {urlunsplit((scheme, name, parts.path, parts.query, ""))
            for scheme in ("http", "https") for name in (host, f"www.{host}")}


def index_url() -> str:
    return os.environ.get("STEPPEWATCH_INDEX_URL") or DEFAULT_INDEX_URL


def storage_day(article: Article) -> str:
    """The UTC day an article is filed under: its publication date, else its fetch date."""
    when = article.published_dt or datetime.fromisoformat(article.fetched_at or datetime.now(UTC).isoformat())
    return when.astimezone(UTC).date().isoformat()


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def shared_index(crawler: Any) -> Index:
    """The crawler's one Index (spider and pipelines share it), from its settings."""
    index = getattr(crawler, "_steppewatch_index", None)
    if index is None:
        settings = crawler.settings
        policy = FetchPolicy(
            recheck_within=timedelta(hours=settings.getfloat("DEDUP_RECHECK_WITHIN_HOURS", 48)),
            recheck_after=timedelta(hours=settings.getfloat("DEDUP_RECHECK_AFTER_HOURS", 6)),
            max_rechecks=settings.getint("DEDUP_MAX_RECHECKS", 1),
            rejection_recheck=rejection_schedule(settings.get("NEWS_REJECTION_RECHECK")),
        )
        index = Index(settings.get("INDEX_URL") or index_url(), policy)
        crawler._steppewatch_index = index
    return index


def _journal_wal(cur: sqlite3.Cursor, timeout: float = 60) -> None:
    """``PRAGMA journal_mode=WAL``, waited for like any other lock.

    Switching a new file to WAL needs an exclusive lock, and while another process is
    opening the same new file SQLite answers "database is locked" at once instead of
    calling the busy handler; two crawls starting together on a fresh index met that.
    """
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


def check_index(url: str) -> None:
    """Raise IndexUnavailable (naming the database, never its password) unless it answers."""
    try:
        index = Index(url)
        with index._read() as conn:
            conn.execute(sa.select(sa.literal(1)))
        index.engine.dispose()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) is not None else exc).strip().splitlines()[0]
        raise IndexUnavailable(f"index {redact(url)} unavailable: {redact_text(reason)}") from None


class Index:
    """One index database; safe to share between threads of one process."""

    _migrated: set[str] = set()
    _migrate_lock = threading.Lock()

    def __init__(self, url: str | None = None, policy: FetchPolicy | None = None) -> None:
        self.url = url or index_url()
        self.policy = policy or FetchPolicy()
        self.engine = self._engine(self.url)
        database = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        self._lock_path = f"{database}.writers.lock" if database and database != ":memory:" else None
        self._database = database if self._lock_path else None
        self.migrate()
        self._identity = self._file_identity()

    def _file_identity(self) -> tuple[int, int] | None:
        if self._database is None:
            return None
        try:
            st = os.stat(self._database)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    def _check_file(self) -> None:
        """A SQLite index deleted or replaced under a running process would take its writes into
        an unlinked file, and the run would report success with nothing indexed: refuse."""
        if self._identity is not None and self._file_identity() != self._identity:
            raise IndexUnavailable(f"index {self._database} was deleted or replaced while this process used it: "
                                   "run `steppewatch reindex` (the store holds every record), then the window again")

    @staticmethod
    def _engine(url: str) -> Engine:
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if str(path) not in ("", ":memory:"):
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 60})

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                _journal_wal(cur)
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA wal_autocheckpoint=10000")
                cur.execute("PRAGMA busy_timeout=60000")
                cur.close()

            @sa.event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:
                # writers take the lock up front, so two of them queue instead of deadlocking
                read_only = conn.get_execution_options().get("read_only", False)
                conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

            return engine
        return sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction; on a SQLite file, writers first queue on a lock file beside it.

        SQLite lets a waiting writer poll with growing sleeps (1, 2, 5, 10 … ms), which
        costs crawl processes sharing one index more than the few milliseconds a commit
        holds the lock; a blocking ``flock`` hands the lock on the moment it is released.
        """
        if self._lock_path is None:
            with self.engine.begin() as conn:
                yield conn
            return
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._check_file()
            with self.engine.begin() as conn:
                yield conn
        finally:
            os.close(fd)  # releases the lock

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def migrate(self) -> None:
        """Upgrade the schema to the newest Alembic revision (once per process and URL)."""
        with Index._migrate_lock:
            if self.url in Index._migrated:
                return
            from alembic import command
            from alembic.config import Config as AlembicConfig

            cfg = AlembicConfig()
            cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
            with self.engine.begin() as conn:
                if self.is_postgres:  # two processes starting at once must not both create tables
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7305119)")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
            Index._migrated.add(self.url)

    def describe(self) -> str:
        return redact(self.url)

    # -- level 1: URLs ------------------------------------------------------------------
    def _read(self) -> Connection:
        return self.engine.connect().execution_options(read_only=True)

    def lookup(self, url: str) -> sa.Row[Any] | None:
        with self._read() as conn:
            return conn.execute(
                sa.select(articles.c.id, articles.c.published, articles.c.first_seen,
                          articles.c.last_checked, articles.c.checks)
                .select_from(urls.join(articles, urls.c.article_id == articles.c.id))
                .where(urls.c.url_hash == url_hash(url))
            ).first()

    def should_fetch(self, url: str, now: datetime | None = None, reprocess: bool = False) -> bool:
        return self.skip_reason(url, now, reprocess) is None

    def skip_reason(self, url: str, now: datetime | None = None, reprocess: bool = False) -> str | None:
        """Why ``url`` is not fetched (``already_stored``, ``rejected_recently``); None: fetch it."""
        if reprocess:
            return None
        row = self.lookup(url)
        now = now or datetime.now(UTC)
        if row is None:
            return "rejected_recently" if self._rejected_recently(url, now) else None
        age_ref = _utc(row.published) or _utc(row.first_seen)
        recent = age_ref is not None and now - age_ref <= self.policy.recheck_within
        rested = now - _utc(row.last_checked) >= self.policy.recheck_after  # type: ignore[operator]
        return None if recent and rested and row.checks <= self.policy.max_rechecks else "already_stored"

    def _rejected_recently(self, url: str, now: datetime) -> bool:
        schedule = self.policy.rejection_recheck
        if not schedule:
            return False
        row = self.rejection(url)
        if row is None:
            return False
        wait = schedule[min(row.checks, len(schedule)) - 1]
        return now - _utc(row.last_checked) < wait  # type: ignore[operator]

    # -- rejected pages -------------------------------------------------------------------
    def rejection(self, url: str) -> sa.Row[Any] | None:
        """The remembered rejection of ``url`` (reason, first_rejected, last_checked, checks)."""
        with self._read() as conn:
            return conn.execute(sa.select(rejections).where(rejections.c.url_hash == url_hash(url))).first()

    def remember_rejection(self, forms: list[str], site: str, reason: str, now: datetime | None = None) -> int:
        """Remember that the page reached by these URL forms is not an article; returns rows written.

        Each form (and its cleaned form, the one discovery looks up) gets a row; a known
        form gets its check counted. A form that is a stored article's URL is left out:
        what the index holds as stored stays so.
        """
        now = now or datetime.now(UTC)
        keyed = _url_forms(forms)
        with self._writing() as conn:
            stored = set(conn.execute(sa.select(urls.c.url_hash).where(urls.c.url_hash.in_(sorted(keyed))))
                         .scalars())
            rows = [{"url_hash": h, "url": u, "site": site, "reason": reason, "first_rejected": now,
                     "last_checked": now, "checks": 1} for h, u in sorted(keyed.items()) if h not in stored]
            if rows:
                conn.execute(_upserting(conn.dialect.name), rows)
        return len(rows)

    def forget_rejection(self, forms: list[str]) -> int:
        """Forget any rejection of these URL forms (a page that is now a listing, say)."""
        hashes = sorted(_url_forms(forms))
        with self._read() as conn:
            if conn.execute(sa.select(rejections.c.url_hash).where(rejections.c.url_hash.in_(hashes))
                            .limit(1)).first() is None:
                return 0  # the common case, with no write lock taken
        with self._writing() as conn:
            return conn.execute(rejections.delete().where(rejections.c.url_hash.in_(hashes))).rowcount

    # -- levels 2 and 3: commit -----------------------------------------------------------
    def commit(self, article: Article, raw: bytes, store: Store, extra_urls: list[str] | None = None) -> Committed:
        """Store an extracted article once; see the module docstring for the protocol."""
        now = datetime.now(UTC)
        day = storage_day(article)
        url_forms = {article.url, article.canonical_url, *(extra_urls or [])}
        # CPU work before the transaction: concurrent crawls then hold the write lock (all of
        # SQLite, rows of PostgreSQL) for the inserts alone
        ev = dedup.evidence(article.text, article.language)
        hashes = dedup.band_hashes(dedup.signature(ev.shingles))
        compressed = _gzip(raw)
        with self._writing() as conn:
            existing = conn.execute(
                sa.select(articles).where(articles.c.id == article.id).with_for_update()
            ).first()
            if existing is not None:
                return self._known(conn, existing, article, raw, store, url_forms, now)
            owner = self._claim_content(conn, article.content_hash, article.id)
            if owner == article.id:
                # a concurrent run committed this same article between our checks
                self._add_urls(conn, article.id, url_forms)
                return Committed(Outcome.DUPLICATE, article.id, self._story_of(conn, article.id))
            if owner is not None:
                return self._alias(conn, article, raw, owner, store, url_forms, day, now)
            matched = self._matching_stories(conn, ev, article.language, article.site, day, hashes)
            matched = sorted({*matched, *self._edition_stories(conn, article, url_forms)})
            story = self._story_holder(conn, article, matched)
            merged = self._merge_stories(conn, store, story, [m for m in matched if m != story])
            record = self._record(article, story, version=1, versions=[])
            record["urls"] = sorted(url_forms)
            keys = (raw_key(article.site, day, article.id), article_key(article.site, day, article.id))
            meta = _meta(article)
            store.put(keys[0], compressed, "text/html", content_encoding="gzip", metadata=meta)
            store.put(keys[1], _json(record), "application/json", metadata=meta)
            self._insert(conn, article, story, day, keys[1], now, alias_of=None, version=1)
            self._insert_shingles(conn, article.id, article.language, day, story, ev, hashes)
            self._add_urls(conn, article.id, url_forms)
            self._add_editions(conn, article.id, article.editions)
            return Committed(Outcome.STORED, article.id, story, (*keys, *merged))

    def _claim_content(self, conn: Connection, content_hash: str, article_id: str) -> str | None:
        """Insert the unique content row; return the owner id if it already existed."""
        stmt = _ignoring(conn.dialect.name, contents, "article_id")
        if conn.execute(stmt, {"content_hash": content_hash, "article_id": article_id}).first() is not None:
            return None
        return conn.execute(sa.select(contents.c.article_id).where(contents.c.content_hash == content_hash)).scalar()

    def _known(self, conn: Connection, row: Any, article: Article, raw: bytes, store: Store,
               url_forms: set[str], now: datetime) -> Committed:
        self._add_urls(conn, row.id, url_forms)
        if row.content_hash == article.content_hash or row.alias_of is not None:
            conn.execute(articles.update().where(articles.c.id == row.id)
                         .values(last_checked=now, checks=articles.c.checks + 1))
            return Committed(Outcome.UNCHANGED, row.id, row.story_id)
        # same URL, new text: keep the old version under a versioned key, write the new one
        old = json.loads(store.get(row.key))
        old_raw_key = raw_key(row.site, row.day, row.id)
        v = int(old.get("version", 1))
        kept_record = version_key(row.site, row.day, row.id, v, "json")
        kept_raw = version_key(row.site, row.day, row.id, v, "html.gz")
        store.put(kept_record, _json(old), "application/json", metadata=_meta(article))
        try:
            store.put(kept_raw, store.get(old_raw_key), "text/html", content_encoding="gzip")
        except FileNotFoundError:
            kept_raw = ""
        versions = list(old.get("versions") or [
            {"version": v, "content_hash": old.get("content_hash"), "fetched_at": old.get("fetched_at")}])
        versions[-1] = {**versions[-1], "key": kept_record, "raw_key": kept_raw}
        versions.append({"version": v + 1, "content_hash": article.content_hash, "fetched_at": article.fetched_at,
                         "key": row.key})
        record = self._record(article, row.story_id, version=v + 1, versions=versions)
        record["urls"] = sorted({*old.get("urls", []), *url_forms})
        record["first_fetched_at"] = old.get("first_fetched_at") or old.get("fetched_at")
        # the record stays filed under its first day, so its key never moves
        store.put(old_raw_key, _gzip(raw), "text/html", content_encoding="gzip",
                  metadata=_meta(article))
        store.put(row.key, _json(record), "application/json", metadata=_meta(article))
        conn.execute(_insert_ignore(conn, contents, {"content_hash": article.content_hash, "article_id": row.id}))
        conn.execute(articles.update().where(articles.c.id == row.id).values(
            content_hash=article.content_hash, version=v + 1, last_checked=now, checks=articles.c.checks + 1,
            title=article.title))
        self._delete_shingles(conn, row.id)
        self._insert_shingles(conn, row.id, article.language, row.day, row.story_id,
                              dedup.evidence(article.text, article.language))
        self._add_editions(conn, row.id, article.editions)
        story, merged = self._join_editions(conn, store, article, row.story_id, url_forms)
        return Committed(Outcome.UPDATED, row.id, story,
                         (kept_record, kept_raw, old_raw_key, row.key, *[k for k in merged if k != row.key]))

    def _alias(self, conn: Connection, article: Article, raw: bytes, owner: str, store: Store,
               url_forms: set[str], day: str, now: datetime) -> Committed:
        target = conn.execute(sa.select(articles).where(articles.c.id == owner).with_for_update()).first()
        if target is not None and target.alias_of is None and _precedes(article, target):
            return self._take_over(conn, article, raw, target, store, url_forms, day, now)
        story = target.story_id if target is not None else owner
        key = alias_key(article.site, day, article.id)
        store.put(key, _json(_alias_record(article, owner, story, url_forms)), "application/json",
                  metadata=_meta(article))
        self._insert(conn, article, story, day, key, now, alias_of=owner, version=1)
        self._add_urls(conn, article.id, url_forms)
        return Committed(Outcome.ALIAS, article.id, story, (key,), alias_of=owner)

    def _take_over(self, conn: Connection, article: Article, raw: bytes, old: Any, store: Store,
                   url_forms: set[str], day: str, now: datetime) -> Committed:
        """The earlier publication of a text holds the record, whatever order runs find them in.

        The newcomer is stored in full; the previous holder becomes its alias (its record
        and raw page are replaced by an alias object), so the store ends up the same
        whichever site a crawl reached first.
        """
        story = old.story_id
        record = self._record(article, story, version=1, versions=[])
        record["urls"] = sorted(url_forms)
        keys = (raw_key(article.site, day, article.id), article_key(article.site, day, article.id))
        meta = _meta(article)
        store.put(keys[0], _gzip(raw), "text/html", content_encoding="gzip", metadata=meta)
        store.put(keys[1], _json(record), "application/json", metadata=meta)
        old_record = json.loads(store.get(old.key))
        previous = _article_from(old_record)
        previous_urls = set(old_record.get("urls") or [previous.url, previous.canonical_url])
        old_alias_key = alias_key(old.site, old.day, old.id)
        store.put(old_alias_key, _json(_alias_record(previous, article.id, story, previous_urls)),
                  "application/json", metadata=_meta(previous))
        store.delete(raw_key(old.site, old.day, old.id))
        store.delete(old.key)
        conn.execute(contents.update().where(contents.c.article_id == old.id).values(article_id=article.id))
        conn.execute(articles.update().where(articles.c.alias_of == old.id).values(alias_of=article.id))
        conn.execute(articles.update().where(articles.c.id == old.id).values(alias_of=article.id, key=old_alias_key))
        self._delete_shingles(conn, old.id)
        self._insert(conn, article, story, day, keys[1], now, alias_of=None, version=1)
        self._insert_shingles(conn, article.id, article.language, day, story,
                              dedup.evidence(article.text, article.language))
        self._add_urls(conn, article.id, url_forms)
        merged: list[str] = []
        if self._story_holder(conn, article, [story]) == article.id:  # the story's earliest publication now
            merged = [k for k in self._merge_stories(conn, store, article.id, [story]) if k not in keys]
            story = article.id
        self._add_editions(conn, article.id, article.editions)
        story, joined = self._join_editions(conn, store, article, story, url_forms)
        merged = sorted({*merged, *(k for k in joined if k not in keys)})
        return Committed(Outcome.STORED, article.id, story, (*keys, old_alias_key, *merged),
                         deleted=(raw_key(old.site, old.day, old.id), old.key))

    def _insert(self, conn: Connection, article: Article, story: str, day: str, key: str, now: datetime,
                alias_of: str | None, version: int, first_seen: datetime | None = None) -> None:
        conn.execute(articles.insert(), dict(
            id=article.id, site=article.site, canonical_url=article.canonical_url, day=day,
            published=_utc(article.published_dt), language=article.language, title=article.title[:2000],
            content_hash=article.content_hash, story_id=story, alias_of=alias_of, version=version, key=key,
            first_seen=first_seen or now, last_checked=first_seen or now, checks=1,
        ))

    def _insert_shingles(self, conn: Connection, article_id: str, language: str | None, day: str, story: str,
                         ev: dedup.Evidence, hashes: list[int] | None = None) -> None:
        conn.execute(shingles.insert(), dict(
            article_id=article_id, language=language, day=day, story_id=story, data=dedup.pack(ev.shingles),
            phrases=dedup.pack(ev.phrases or set()), paragraphs=dedup.pack(ev.paragraphs),
            numbers=dedup.pack(ev.numbers or set())))
        if hashes is None:
            hashes = dedup.band_hashes(dedup.signature(ev.shingles))
        # the DB-API's executemany directly: SQLAlchemy's per-row parameter processing cost
        # more than the 64 inserts themselves
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(f"INSERT INTO bands (band, hash, day, article_id) VALUES ({mark}, {mark}, {mark}, {mark})",
                             [(b, h, day, article_id) for b, h in enumerate(hashes)])

    def _delete_shingles(self, conn: Connection, article_id: str) -> None:
        """Remove an article's shingles and band rows, the bands by primary key.

        The band hashes are recomputed from the stored shingle set: band rows have no
        index on article_id, and a scan of 64 rows per stored article would not scale.
        """
        row = conn.execute(sa.select(shingles.c.data, shingles.c.day)
                           .where(shingles.c.article_id == article_id)).first()
        if row is None:
            return
        rows = [{"b": b, "h": h, "d": row.day, "a": article_id}
                for b, h in enumerate(dedup.band_hashes(dedup.signature(dedup.unpack(row.data))))]
        conn.execute(bands.delete().where(bands.c.band == sa.bindparam("b"), bands.c.hash == sa.bindparam("h"),
                                          bands.c.day == sa.bindparam("d"), bands.c.article_id == sa.bindparam("a")),
                     rows)
        conn.execute(shingles.delete().where(shingles.c.article_id == article_id))

    def _add_urls(self, conn: Connection, article_id: str, forms: set[str]) -> None:
        conn.execute(_ignoring(conn.dialect.name, urls),
                     [{"url_hash": url_hash(url), "article_id": article_id} for url in sorted(forms)])
        # an article now: none of its URLs stays remembered as a rejected page
        conn.execute(rejections.delete().where(rejections.c.url_hash.in_(sorted(_url_forms(forms)))))

    # -- language editions (docs/DEDUP.md, "Language editions") ----------------------------
    def _add_editions(self, conn: Connection, article_id: str, declared: dict[str, str]) -> None:
        """Record the editions an article's page declares (replacing what an earlier version declared)."""
        conn.execute(editions.delete().where(editions.c.article_id == article_id))
        rows = {edition_key(url): language[:16] for url, language in sorted(declared.items())}
        if rows:
            conn.execute(_ignoring(conn.dialect.name, editions),
                         [{"url_key": k, "article_id": article_id, "hreflang": v} for k, v in sorted(rows.items())])

    def _edition_stories(self, conn: Connection, article: Article, url_forms: set[str]) -> list[str]:
        """Stories of stored articles that are ``article``'s language editions.

        A pair counts when each page declares the other (reciprocal hreflang), their
        languages differ, neither declares another page for the other's language, and
        they were published at most ``dedup.MAX_DAYS_APART`` days apart. One-sided
        declarations are ignored: broken templates point every page at one fixed page.
        """
        if not article.editions or not article.language:
            return []
        record = sa.func.coalesce(articles.c.alias_of, articles.c.id)
        spelled = {url_hash(s): url for url in article.editions for s in _spellings(url)}
        resolved: dict[str, set[str]] = {}  # declared edition URL -> the records it reaches
        for row in conn.execute(sa.select(urls.c.url_hash, record.label("rid"))
                                .select_from(urls.join(articles, urls.c.article_id == articles.c.id))
                                .where(urls.c.url_hash.in_(sorted(spelled)))):
            resolved.setdefault(spelled[row.url_hash], set()).add(row.rid)
        if not resolved:
            return []
        own_keys = {edition_key(url) for url in url_forms if url}
        declarers = set(conn.execute(sa.select(record)
                                     .select_from(editions.join(articles, editions.c.article_id == articles.c.id))
                                     .where(editions.c.url_key.in_(sorted(own_keys)))).scalars())
        stories: set[str] = set()
        for candidate in sorted(set().union(*resolved.values()) & declarers - {article.id}):
            row = conn.execute(sa.select(articles.c.language, articles.c.published, articles.c.story_id)
                               .where(articles.c.id == candidate)).first()
            if row is None or not row.language or row.language == article.language:
                continue  # a same-language alternate is a mobile or AMP copy: URL aliases cover it
            mine, theirs = _utc(article.published_dt), _utc(row.published)
            if mine and theirs and abs(mine - theirs) > timedelta(days=dedup.MAX_DAYS_APART):
                continue
            # every page this one declares for the candidate's language is the candidate …
            if any(resolved.get(url) != {candidate} for url, lang in article.editions.items() if lang == row.language):
                continue
            # … and every page the candidate declares for this one's language is this one
            back = conn.execute(sa.select(editions.c.url_key).where(editions.c.article_id == candidate,
                                                                      editions.c.hreflang == article.language))
            if any(key not in own_keys for key in back.scalars()):
                continue
            stories.add(row.story_id)
        return sorted(stories)

    def _join_editions(self, conn: Connection, store: Store, article: Article, story: str,
                       url_forms: set[str]) -> tuple[str, list[str]]:
        """Join ``story`` (the article's) with its editions' stories; the story id and the keys rewritten."""
        found = [s for s in self._edition_stories(conn, article, url_forms) if s != story]
        if not found:
            return story, []
        holder = self._story_holder(conn, article, [story, *found])
        return holder, self._merge_stories(conn, store, holder, [s for s in [story, *found] if s != holder])

    def _story_of(self, conn: Connection, article_id: str) -> str:
        return conn.execute(sa.select(articles.c.story_id).where(articles.c.id == article_id)).scalar() or article_id

    def _matching_stories(self, conn: Connection, ev: dedup.Evidence, language: str | None, site: str,
                          day: str, hashes: list[int] | None = None) -> list[str]:
        """Stories with a recent same-language article telling the same story (``dedup.same_story``).

        Word Jaccard of the whole texts bounds the own-text one from above (template
        words are in both sets), so it screens candidates before their evidence is read.
        """
        sh = ev.shingles
        if not sh:
            return []
        d = datetime.fromisoformat(day)
        lo = (d - timedelta(days=dedup.MAX_DAYS_APART)).date().isoformat()
        hi = (d + timedelta(days=dedup.MAX_DAYS_APART)).date().isoformat()
        if hashes is None:
            hashes = dedup.band_hashes(dedup.signature(sh))
        params: dict[str, Any] = {f"h{b}": h for b, h in enumerate(hashes)}
        candidates = [c.article_id for c in conn.execute(_candidates_query(), {**params, "lo": lo, "hi": hi})]
        if not candidates:
            return []
        rows = conn.execute(sa.select(shingles.c.story_id, shingles.c.language, shingles.c.data,
                                      shingles.c.phrases, shingles.c.paragraphs, shingles.c.numbers,
                                      articles.c.site)
                            .join(articles, articles.c.id == shingles.c.article_id)
                            .where(shingles.c.article_id.in_(candidates))).all()
        return sorted({row.story_id for row in rows if (row.language or None) == (language or None)
                       and dedup.jaccard_packed(sh, row.data) >= dedup.SAME_STORY_JACCARD
                       and dedup.same_story(ev, _stored_evidence(row), same_site=row.site == site)})

    def _story_holder(self, conn: Connection, article: Article, stories: list[str]) -> str:
        """The id a story joining ``article`` and ``stories`` goes by: its earliest publication's.

        A story's id is the id of its earliest-published member (ties: the smaller id), so
        the store holds the same story ids whatever order runs, sites or processes find
        the articles in.
        """
        if not stories:
            return article.id
        holders = conn.execute(sa.select(articles.c.id, articles.c.published)
                               .where(articles.c.id.in_(sorted(set(stories))))).all()
        best = article.id
        best_key = _order_key(article.published_dt, article.id)
        for row in holders:
            key = _order_key(row.published, row.id)
            if key < best_key:
                best, best_key = row.id, key
        return best

    def _merge_stories(self, conn: Connection, store: Store, primary: str, others: list[str]) -> list[str]:
        """Join stories under ``primary`` (single-link): members, records and alert rows move.

        A rule's alert row follows its story, so a story renamed or joined does not alert
        again for what it already alerted.
        """
        keys: list[str] = []
        for other in others:
            members = conn.execute(sa.select(articles.c.key).where(articles.c.story_id == other)).scalars().all()
            conn.execute(articles.update().where(articles.c.story_id == other).values(story_id=primary))
            conn.execute(shingles.update().where(shingles.c.story_id == other).values(story_id=primary))
            taken = sa.select(_outbox_peer.c.id).where(_outbox_peer.c.rule == alert_outbox.c.rule,
                                                       _outbox_peer.c.story_id == primary)
            conn.execute(alert_outbox.update().where(alert_outbox.c.story_id == other, ~taken.exists())
                         .values(story_id=primary))
            for key in members:
                record = json.loads(store.get(key))
                record["story_id"] = primary
                store.put(key, _json(record), "application/json")
                keys.append(key)
        return keys

    @staticmethod
    def _record(article: Article, story: str, version: int, versions: list[dict[str, Any]]) -> dict[str, Any]:
        record = article.to_dict()
        record.update(story_id=story, version=version, updated=version > 1, versions=versions)
        return record

    # -- queries and rebuild ------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            return {
                "articles": conn.execute(sa.select(sa.func.count()).select_from(articles)
                                         .where(articles.c.alias_of.is_(None))).scalar() or 0,
                "aliases": conn.execute(sa.select(sa.func.count()).select_from(articles)
                                        .where(articles.c.alias_of.is_not(None))).scalar() or 0,
                "stories": conn.execute(sa.select(sa.func.count(sa.distinct(articles.c.story_id)))).scalar() or 0,
                "urls": conn.execute(sa.select(sa.func.count()).select_from(urls)).scalar() or 0,
            }

    def stories(self) -> dict[str, str]:
        """article id -> story id, for every record and alias."""
        with self._read() as conn:
            return dict(conn.execute(sa.select(articles.c.id, articles.c.story_id)).all())

    def story_members(self, story_id: str) -> list[sa.Row[Any]]:
        with self._read() as conn:
            return list(conn.execute(sa.select(articles).where(articles.c.story_id == story_id)
                                     .order_by(articles.c.first_seen, articles.c.id)).all())

    def clear(self) -> None:
        with self.engine.begin() as conn:
            for table in (bands, shingles, urls, contents, articles, editions):
                conn.execute(table.delete())

    def rebuild(self, store: Store, reader: RecordReader | None = None) -> dict[str, int]:
        """Rebuild the article rows from the records in the store (records carry their story ids).

        Every record is read and its story evidence computed first; then one write transaction
        empties the tables and fills them again, so readers see the old index or the new one,
        never a half-emptied one. Crawls may run beside it: their commits queue behind that
        transaction (the writers' lock file on SQLite, a table lock on PostgreSQL), and records
        a crawl stored while the rest were read are picked up inside it. An unreadable record
        is skipped and named (``reader.skipped``), never fatal.
        """
        reader = reader or RecordReader(store)
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
            return [k for prefix in RECORD_PREFIXES for k in store.list(prefix) if parse_record_key(k) is not None]

        prepare(record_keys())
        with self._writing() as conn:
            if conn.dialect.name == "postgresql":
                # crawls' commits (SELECT … FOR UPDATE, INSERT) wait until the swap is done
                conn.exec_driver_sql("LOCK TABLE articles, contents, urls, shingles, bands, editions IN EXCLUSIVE MODE")
            prepare(record_keys())  # what a crawl stored while the others were read
            for table in (bands, shingles, urls, contents, articles, editions):
                conn.execute(table.delete())
            counts = {"records": 0, "aliases": 0}
            for key, record, ev in self._one_per_id(prepared, reader):
                try:
                    self._restore(conn, key, record, ev)
                except (TypeError, ValueError, KeyError) as exc:
                    reader.skipped.append(BadRecord(key, f"cannot be indexed: {exc}"))
                    continue
                counts["aliases" if ev is None else "records"] += 1
        return {**counts, **reader.counts()}

    @staticmethod
    def _one_per_id(prepared: list[tuple[str, dict[str, Any], dedup.Evidence | None]],
                    reader: RecordReader) -> list[tuple[str, dict[str, Any], dedup.Evidence | None]]:
        """One record per article id: a crash between writing a record under a new key and
        deleting the old one leaves two. The record beats the alias, then the newer version,
        then the later fetch; the other is named as skipped."""
        def rank(item: tuple[str, dict[str, Any], dedup.Evidence | None]) -> tuple[bool, int, str]:
            _key, record, ev = item
            return (ev is not None, int(record.get("version") or 1), str(record.get("fetched_at") or ""))

        best: dict[str, tuple[str, dict[str, Any], dedup.Evidence | None]] = {}
        for item in prepared:
            held = best.get(item[1]["id"])
            if held is None or rank(item) > rank(held):
                best[item[1]["id"]] = item
                item, held = held, item
            if item is not None:
                reader.skipped.append(BadRecord(item[0], f"another record of article {item[1]['id']} "
                                                         f"is kept: {held[0]}"))
        return sorted(best.values(), key=lambda item: item[0])

    def _restore(self, conn: Connection, key: str, record: dict[str, Any], ev: dedup.Evidence | None) -> None:
        """Insert the rows of one stored record (``ev`` None: an alias, which has no text)."""
        if ev is None:
            record = {**record, "text": "", "authors": [], "tags": []}
        article = _article_from(record)
        first = datetime.fromisoformat(record.get("first_fetched_at") or record["fetched_at"])
        day = parse_record_key(key).day.isoformat()
        if ev is None:
            self._insert(conn, article, record["story_id"], day, key, first, alias_of=record["alias_of"],
                         version=1, first_seen=first)
        else:
            conn.execute(_insert_ignore(conn, contents, {"content_hash": article.content_hash,
                                                          "article_id": article.id}))
            self._insert(conn, article, record["story_id"], day, key, first, alias_of=None,
                         version=int(record.get("version", 1)), first_seen=first)
            self._insert_shingles(conn, article.id, article.language, day, record["story_id"], ev)
            self._add_editions(conn, article.id, article.editions)
        self._add_urls(conn, article.id, {article.url, article.canonical_url, *record.get("urls", [])})


def _stored_evidence(row: Any) -> dedup.Evidence:
    """A stored article's side of the story decision; NULL columns (rows older than
    migration 0009) leave their checks out."""
    return dedup.Evidence(
        shingles=dedup.unpack(row.data),
        phrases=dedup.unpack(row.phrases) if row.phrases is not None else None,
        paragraphs=dedup.unpack(row.paragraphs) if row.paragraphs is not None else set(),
        numbers=dedup.unpack(row.numbers) if row.numbers is not None else None,
    )


def _article_from(record: dict[str, Any]) -> Article:
    fields = Article.__dataclass_fields__
    return Article(**{k: v for k, v in record.items() if k in fields})


def _order_key(published: datetime | None, article_id: str) -> tuple[bool, datetime, str]:
    """Earliest publication first; undated after dated; ties by id."""
    when = _utc(published)
    return (when is None, when or datetime.max.replace(tzinfo=UTC), article_id)


def _precedes(article: Article, row: Any) -> bool:
    """Whether ``article`` is the earlier publication than the indexed ``row`` (ties: smaller id)."""
    return _order_key(article.published_dt, article.id) < _order_key(row.published, row.id)


def _alias_record(article: Article, owner: str, story: str, url_forms: set[str]) -> dict[str, Any]:
    return {
        "id": article.id, "alias_of": owner, "story_id": story, "site": article.site, "url": article.url,
        "canonical_url": article.canonical_url, "title": article.title, "published": article.published,
        "date_source": article.date_source, "language": article.language, "content_hash": article.content_hash,
        "fetched_at": article.fetched_at, "http_status": article.http_status, "urls": sorted(url_forms),
    }


def _url_forms(forms: Iterable[str]) -> dict[str, str]:
    """url_hash -> URL for each form and its cleaned form (discovery looks URLs up cleaned)."""
    out: dict[str, str] = {}
    for url in forms:
        if not url:
            continue
        out[url_hash(url)] = url
        try:
            cleaned = clean_url(url)
        except ValueError:  # not a URL urlsplit accepts: the form as given is all there is
            continue
        out.setdefault(url_hash(cleaned), cleaned)
    return out


@lru_cache(maxsize=2)
def _upserting(dialect: str) -> Any:
    """INSERT a rejection, or count one more check of a remembered one (the newest reason)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(rejections)
    return stmt.on_conflict_do_update(
        index_elements=[rejections.c.url_hash],
        set_={"reason": stmt.excluded.reason, "site": stmt.excluded.site,
              "last_checked": stmt.excluded.last_checked, "checks": rejections.c.checks + 1})


def _insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> Any:
    return _ignoring(conn.dialect.name, table).values(**values)


@lru_cache(maxsize=32)
def _ignoring(dialect: str, table: sa.Table, returning: str | None = None) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for ``table``, built once; values come at execution."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).on_conflict_do_nothing()
    return stmt.returning(table.c[returning]) if returning else stmt


@lru_cache(maxsize=1)
def _candidates_query() -> sa.Select[Any]:
    """Articles sharing LSH bands with a signature (``h0``…), within ``lo``..``hi`` days.

    Built once: constructing 64 (band, hash) comparisons per article cost more than the
    query itself.
    """
    lo, hi = sa.bindparam("lo"), sa.bindparam("hi")
    # one range scan of the primary key (band, hash, day, …) per band, reading only rows
    # within the window; as a UNION ALL, PostgreSQL answers each from the index alone
    # (an OR of the 64 would be a bitmap scan, which visits the table for every row)
    hits = sa.union_all(*[
        sa.select(bands.c.article_id).where(bands.c.band == b,
                                            bands.c.hash == sa.bindparam(f"h{b}", type_=sa.BigInteger),
                                            bands.c.day >= lo, bands.c.day <= hi)
        for b in range(dedup.BANDS)]).subquery("hits")
    shared = sa.func.count().label("shared")
    return (sa.select(hits.c.article_id, shared)
            .group_by(hits.c.article_id).order_by(shared.desc(), hits.c.article_id).limit(50))


def _gzip(raw: bytes) -> bytes:
    # level 6 (zlib's default): a third of level 9's time, a few percent larger
    return gzip.compress(raw, compresslevel=6, mtime=0)


def _json(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")


def _meta(article: Article) -> dict[str, str]:
    return {"site": article.site, "published": article.published or "", "content-hash": article.content_hash}
