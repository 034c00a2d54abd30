"""The index database: its tables, engines and the dialect helpers every module shares.

SQL through SQLAlchemy: a SQLite file by default (``STEPPEWATCH_INDEX_URL``, default
``sqlite:///data/index.sqlite``), PostgreSQL in deployment. The schema is managed by
Alembic (``steppewatch/migrations``, whose environment imports this module's ``metadata``).
The tables of the archive live here; the alert outbox and site health tables are
declared by their own modules on the same ``metadata``.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from steppewatch.redaction import quoted

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
    # story evidence (migration 0010); NULL in rows written before it
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
# key (``index.edition_key``) -> the declaring article, with the hreflang it was declared under
editions = sa.Table(
    "editions", metadata,
    sa.Column("url_key", sa.String(32), nullable=False),
    sa.Column("article_id", sa.String(16), nullable=False),
    sa.Column("hreflang", sa.String(16), nullable=False),
    sa.PrimaryKeyConstraint("url_key", "article_id"),
)
# store writes a commit decided but leaves until its transaction is durable (migration 0009):
# deleting an object the old rows point at, rewriting a record in place. Inserted in the
# commit's transaction, carried out after it, deleted when done; rows left by a crash are
# carried out by the next run (``Archive.repair``)
pending_writes = sa.Table(
    "pending_writes", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("action", sa.String(16), nullable=False),  # delete | restory | promote
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("source", sa.Text),  # promote: the staged object to move to ``key``
    sa.Column("article_id", sa.String(16)),  # restory: whose story the record takes
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
# the store this index was built from (migration 0013), one row: an index describes one
# store's contents, and used with another it would take that store for holding every URL it
# knows (``Index.bind_store``); set at the index's first use with a store, reset by ``reindex``
store_binding = sa.Table(
    "store_binding", metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),  # always 1
    sa.Column("store", sa.Text, nullable=False),  # the store's identity (``Store.identity``)
    sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_editions_article", editions.c.article_id)
sa.Index("ix_articles_story", articles.c.story_id)
sa.Index("ix_articles_site_day", articles.c.site, articles.c.day)
sa.Index("ix_articles_content_hash", articles.c.content_hash)
sa.Index("ix_urls_article", urls.c.article_id)


def index_url() -> str:
    """The embedded default; the configured index (``STEPPEWATCH_INDEX_URL``) is ``Config.index``."""
    return DEFAULT_INDEX_URL


def utc(value: datetime | None) -> datetime | None:
    """A database timestamp as an aware UTC datetime (SQLite hands them back naive)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING of one row."""
    return ignoring(conn.dialect.name, table).values(**values)


@lru_cache(maxsize=32)
def ignoring(dialect: str, table: sa.Table, returning: str | None = None) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for ``table``, built once; values come at execution."""
    insert = _insert_for(dialect)
    stmt = insert(table).on_conflict_do_nothing()
    return stmt.returning(table.c[returning]) if returning else stmt


@lru_cache(maxsize=2)
def counting_rejection(dialect: str) -> Any:
    """INSERT a rejection, or count one more check of a remembered one (the newest reason)."""
    stmt = _insert_for(dialect)(rejections)
    return stmt.on_conflict_do_update(
        index_elements=[rejections.c.url_hash],
        set_={"reason": stmt.excluded.reason, "site": stmt.excluded.site,
              "last_checked": stmt.excluded.last_checked, "checks": rejections.c.checks + 1})


def _insert_for(dialect: str) -> Callable[..., Any]:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


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


def open_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with writers taking the lock up front, or a
    small pre-pinged PostgreSQL pool."""
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
    # a password with "/" or "@" as an operator pasted it: encoded before SQLAlchemy parses it
    return sa.create_engine(quoted(url), pool_pre_ping=True, pool_size=2, max_overflow=2)


@contextmanager
def writing(engine: Engine, lock_path: str | None, check: Callable[[], None] | None = None) -> Iterator[Connection]:
    """A write transaction; on a SQLite file, writers first queue on a lock file beside it.

    SQLite lets a waiting writer poll with growing sleeps (1, 2, 5, 10 … ms), which
    costs crawl processes sharing one index more than the few milliseconds a commit
    holds the lock; a blocking ``flock`` hands the lock on the moment it is released.
    ``check`` runs once the lock is held, before the transaction begins.
    """
    if lock_path is None:
        with engine.begin() as conn:
            yield conn
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if check is not None:
            check()
        with engine.begin() as conn:
            yield conn
    finally:
        os.close(fd)  # releases the lock


def lock_article(conn: Connection, article_id: str) -> None:
    """Serialise writers of one article id until this transaction ends.

    ``SELECT … FOR UPDATE`` locks only a row that exists: two PostgreSQL transactions
    storing the same new URL with different texts would both find nothing, both write
    their objects and one would fail on the insert, leaving its text in the store and the
    other's in the index. A transaction-scoped advisory lock on the id makes the second
    wait and then find the first one's row (it becomes a new version). SQLite writers
    are serialised by ``writing`` already.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _advisory_key(article_id)})


def _advisory_key(article_id: str) -> int:
    # ids are hex digests: 15 hex digits fit a signed BIGINT; a namespace bit apart from
    # the migration lock's small constant
    return int(article_id[:15], 16) | (1 << 60)
