"""The dedup index: which URLs, texts and stories are already stored. SQL only.

The tables are in ``steppewatch.db``; what is written to the object store, and in which
order against the transaction, is ``steppewatch.archive``'s job. Three levels:

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

The store is the source of truth and the index is derived from it (``reindex``). An index
describes one store: it records which (``store_binding``, the store's ``identity``) at its
first use with a store, and refuses another one (``bind_store``, ``StoreMismatch``) before a
run fetches or rewrites anything; otherwise every URL it knows would count as stored in a
store that holds none of them. ``reindex`` rebuilds it from the store given and rebinds it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steppewatch import db, dedup
from steppewatch.db import (
    articles,
    bands,
    contents,
    editions,
    pending_writes,
    rejections,
    shingles,
    store_binding,
    urls,
    utc,
)
from steppewatch.errors import ConfigError, IndexUnavailable
from steppewatch.models import Article
from steppewatch.redaction import redact, redact_text
from steppewatch.urls import clean_url

if TYPE_CHECKING:
    from steppewatch.store import Store


class StoreMismatch(ConfigError):
    """The index belongs to another store than the one given: refused before anything is done
    (the CLI exits with ``ExitCode.USAGE``). The message names both stores and the ways out."""


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


def check_index(url: str, store: Store | None = None) -> None:
    """Raise IndexUnavailable (naming the database, never its password) unless it answers; with
    ``store``, StoreMismatch unless the index belongs to it (an unbound index is bound to it)."""
    try:
        index = Index(url)
        try:
            with index.reading() as conn:
                conn.execute(sa.select(sa.literal(1)))
            if store is not None:
                index.bind_store(store)
        finally:
            index.engine.dispose()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) is not None else exc).strip().splitlines()[0]
        raise IndexUnavailable(f"index {redact(url)} unavailable: {redact_text(reason)}") from None


def order_key(published: datetime | None, article_id: str) -> tuple[bool, datetime, str]:
    """Earliest publication first; undated after dated; ties by id."""
    when = utc(published)
    return (when is None, when or datetime.max.replace(tzinfo=UTC), article_id)


class Index:
    """One index database; safe to share between threads of one process."""

    _migrated: set[str] = set()
    _migrate_lock = threading.Lock()

    def __init__(self, url: str | None = None, policy: FetchPolicy | None = None) -> None:
        self.url = url or db.index_url()
        self.policy = policy or FetchPolicy()
        self.engine = db.open_engine(self.url)
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

    def check_file(self) -> None:
        """A SQLite index deleted or replaced under a running process would take its writes into
        an unlinked file, and the run would report success with nothing indexed: refuse."""
        if self._identity is not None and self._file_identity() != self._identity:
            raise IndexUnavailable(f"index {self._database} was deleted or replaced while this process used it: "
                                   "run `steppewatch reindex` (the store holds every record), then the window again")

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One write transaction (queued behind the other writers of a SQLite file)."""
        with db.writing(self.engine, self._lock_path, self.check_file) as conn:
            yield conn

    def reading(self) -> Connection:
        return self.engine.connect().execution_options(read_only=True)

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

    # -- the store this index describes (``store_binding``) ------------------------------------
    def bound_store(self) -> str | None:
        """The identity of the store this index belongs to; None before its first use with one."""
        with self.reading() as conn:
            return conn.execute(sa.select(store_binding.c.store).where(store_binding.c.id == 1)).scalar()

    def bind_store(self, store: Store) -> None:
        """Check that this index belongs to ``store``, binding it if it belongs to none yet.

        An index from before the binding (migration 0013) adopts the store of its first run.
        Two first runs with different stores at once: the first insert wins, the other is refused.
        """
        identity = store.identity
        bound = self.bound_store()
        if bound is None:
            with self.writing() as conn:
                conn.execute(db.insert_ignore(conn, store_binding,
                                              {"id": 1, "store": identity, "bound_at": datetime.now(UTC)}))
                bound = conn.execute(sa.select(store_binding.c.store).where(store_binding.c.id == 1)).scalar()
        if bound != identity:
            raise StoreMismatch(self.mismatch(bound, identity))

    def mismatch(self, bound: str | None, identity: str) -> str:
        """What refusing a store says: both stores, why, and the three ways out (no password)."""
        index, ours, given = self.describe(), redact_text(str(bound)), redact_text(identity)
        return (f"index {index} belongs to store {ours}, not to store {given}: it would take the articles it "
                f"knows for stored in {given} and store none of them there. Nothing was fetched or written. "
                f"Either use the index's own store ({ours}), or a new index for {given} (another "
                f"STEPPEWATCH_INDEX_URL), or run `steppewatch reindex` with store {given} to rebuild this index "
                f"from that store and bind it to it (it then forgets {ours})")

    @staticmethod
    def rebind(conn: Connection, store: Store) -> str | None:
        """Bind the index to ``store`` inside ``reindex``'s transaction; returns the store it left.

        Writes a crash left undone belong to the store they were decided for: rebound to another
        store, they are dropped (the index is rebuilt from the new store's records anyway)."""
        identity = store.identity
        previous = conn.execute(sa.select(store_binding.c.store).where(store_binding.c.id == 1)).scalar()
        if previous == identity:
            return previous
        if previous is not None:
            conn.execute(pending_writes.delete())
        conn.execute(store_binding.delete())
        conn.execute(store_binding.insert().values(id=1, store=identity, bound_at=datetime.now(UTC)))
        return previous

    # -- level 1: URLs ------------------------------------------------------------------
    def lookup(self, url: str) -> sa.Row[Any] | None:
        with self.reading() as conn:
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
        age_ref = utc(row.published) or utc(row.first_seen)
        recent = age_ref is not None and now - age_ref <= self.policy.recheck_within
        rested = now - utc(row.last_checked) >= self.policy.recheck_after  # type: ignore[operator]
        return None if recent and rested and row.checks <= self.policy.max_rechecks else "already_stored"

    def _rejected_recently(self, url: str, now: datetime) -> bool:
        schedule = self.policy.rejection_recheck
        if not schedule:
            return False
        row = self.rejection(url)
        if row is None:
            return False
        wait = schedule[min(row.checks, len(schedule)) - 1]
        return now - utc(row.last_checked) < wait  # type: ignore[operator]

    # -- rejected pages -------------------------------------------------------------------
    def rejection(self, url: str) -> sa.Row[Any] | None:
        """The remembered rejection of ``url`` (reason, first_rejected, last_checked, checks)."""
        with self.reading() as conn:
            return conn.execute(sa.select(rejections).where(rejections.c.url_hash == url_hash(url))).first()

    def remember_rejection(self, forms: list[str], site: str, reason: str, now: datetime | None = None) -> int:
        """Remember that the page reached by these URL forms is not an article; returns rows written.

        Each form (and its cleaned form, the one discovery looks up) gets a row; a known
        form gets its check counted. A form that is a stored article's URL is left out:
        what the index holds as stored stays so.
        """
        now = now or datetime.now(UTC)
        keyed = url_forms(forms)
        with self.writing() as conn:
            stored = set(conn.execute(sa.select(urls.c.url_hash).where(urls.c.url_hash.in_(sorted(keyed))))
                         .scalars())
            rows = [{"url_hash": h, "url": u, "site": site, "reason": reason, "first_rejected": now,
                     "last_checked": now, "checks": 1} for h, u in sorted(keyed.items()) if h not in stored]
            if rows:
                conn.execute(db.counting_rejection(conn.dialect.name), rows)
        return len(rows)

    def forget_rejection(self, forms: list[str]) -> int:
        """Forget any rejection of these URL forms (a page that is now a listing, say)."""
        hashes = sorted(url_forms(forms))
        with self.reading() as conn:
            if conn.execute(sa.select(rejections.c.url_hash).where(rejections.c.url_hash.in_(hashes))
                            .limit(1)).first() is None:
                return 0  # the common case, with no write lock taken
        with self.writing() as conn:
            return conn.execute(rejections.delete().where(rejections.c.url_hash.in_(hashes))).rowcount

    # -- inside a commit's transaction (``Archive.commit``) --------------------------------------
    @staticmethod
    def article_row(conn: Connection, article_id: str) -> sa.Row[Any] | None:
        """The article's row, locked for this transaction; writers of a new id wait their turn."""
        db.lock_article(conn, article_id)
        return conn.execute(sa.select(articles).where(articles.c.id == article_id).with_for_update()).first()

    @staticmethod
    def claim_content(conn: Connection, content_hash: str, article_id: str) -> str | None:
        """Insert the unique content row; return the owner id if it already existed."""
        stmt = db.ignoring(conn.dialect.name, contents, "article_id")
        if conn.execute(stmt, {"content_hash": content_hash, "article_id": article_id}).first() is not None:
            return None
        return conn.execute(sa.select(contents.c.article_id).where(contents.c.content_hash == content_hash)).scalar()

    @staticmethod
    def insert_article(conn: Connection, article: Article, story: str, day: str, key: str, now: datetime,
                       alias_of: str | None, version: int, first_seen: datetime | None = None) -> None:
        conn.execute(articles.insert(), dict(
            id=article.id, site=article.site, canonical_url=article.canonical_url, day=day,
            published=utc(article.published_dt), language=article.language, title=article.title[:2000],
            content_hash=article.content_hash, story_id=story, alias_of=alias_of, version=version, key=key,
            first_seen=first_seen or now, last_checked=first_seen or now, checks=1,
        ))

    @staticmethod
    def mark_checked(conn: Connection, article_id: str, now: datetime) -> None:
        conn.execute(articles.update().where(articles.c.id == article_id)
                     .values(last_checked=now, checks=articles.c.checks + 1))

    def record_version(self, conn: Connection, row: Any, article: Article, version: int, now: datetime,
                       ev: dedup.Evidence) -> None:
        """The rows of a new version of ``row``'s article (same id, key and story)."""
        conn.execute(db.insert_ignore(conn, contents, {"content_hash": article.content_hash, "article_id": row.id}))
        conn.execute(articles.update().where(articles.c.id == row.id).values(
            content_hash=article.content_hash, version=version, last_checked=now, checks=articles.c.checks + 1,
            title=article.title))
        self.delete_shingles(conn, row.id)
        self.insert_shingles(conn, row.id, article.language, row.day, row.story_id, ev)

    def hand_over(self, conn: Connection, old: Any, new_id: str, old_alias_key: str) -> None:
        """``old``'s text passes to ``new_id`` (the earlier publication): ``old`` and its aliases
        become aliases of ``new_id``."""
        conn.execute(contents.update().where(contents.c.article_id == old.id).values(article_id=new_id))
        conn.execute(articles.update().where(articles.c.alias_of == old.id).values(alias_of=new_id))
        conn.execute(articles.update().where(articles.c.id == old.id).values(alias_of=new_id, key=old_alias_key))
        self.delete_shingles(conn, old.id)

    @staticmethod
    def insert_shingles(conn: Connection, article_id: str, language: str | None, day: str, story: str,
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

    @staticmethod
    def delete_shingles(conn: Connection, article_id: str) -> None:
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

    @staticmethod
    def add_urls(conn: Connection, article_id: str, forms: set[str]) -> None:
        conn.execute(db.ignoring(conn.dialect.name, urls),
                     [{"url_hash": url_hash(url), "article_id": article_id} for url in sorted(forms)])
        # an article now: none of its URLs stays remembered as a rejected page
        conn.execute(rejections.delete().where(rejections.c.url_hash.in_(sorted(url_forms(forms)))))

    # -- language editions (docs/DEDUP.md, "Language editions") ----------------------------
    @staticmethod
    def add_editions(conn: Connection, article_id: str, declared: dict[str, str]) -> None:
        """Record the editions an article's page declares (replacing what an earlier version declared)."""
        conn.execute(editions.delete().where(editions.c.article_id == article_id))
        rows = {edition_key(url): language[:16] for url, language in sorted(declared.items())}
        if rows:
            conn.execute(db.ignoring(conn.dialect.name, editions),
                         [{"url_key": k, "article_id": article_id, "hreflang": v} for k, v in sorted(rows.items())])

    @staticmethod
    def edition_stories(conn: Connection, article: Article, forms: set[str]) -> list[str]:
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
        own_keys = {edition_key(url) for url in forms if url}
        declarers = set(conn.execute(sa.select(record)
                                     .select_from(editions.join(articles, editions.c.article_id == articles.c.id))
                                     .where(editions.c.url_key.in_(sorted(own_keys)))).scalars())
        stories: set[str] = set()
        for candidate in sorted(set().union(*resolved.values()) & declarers - {article.id}):
            row = conn.execute(sa.select(articles.c.language, articles.c.published, articles.c.story_id)
                               .where(articles.c.id == candidate)).first()
            if row is None or not row.language or row.language == article.language:
                continue  # a same-language alternate is a mobile or AMP copy: URL aliases cover it
            mine, theirs = utc(article.published_dt), utc(row.published)
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

    # -- stories ------------------------------------------------------------------------------
    @staticmethod
    def story_of(conn: Connection, article_id: str) -> str:
        return conn.execute(sa.select(articles.c.story_id).where(articles.c.id == article_id)).scalar() or article_id

    @staticmethod
    def matching_stories(conn: Connection, ev: dedup.Evidence, language: str | None, site: str, day: str,
                         hashes: list[int] | None = None) -> list[str]:
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

    @staticmethod
    def story_holder(conn: Connection, article: Article, stories: list[str]) -> str:
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
        best_key = order_key(article.published_dt, article.id)
        for row in holders:
            key = order_key(row.published, row.id)
            if key < best_key:
                best, best_key = row.id, key
        return best

    @staticmethod
    def move_story(conn: Connection, primary: str, other: str) -> list[tuple[str, str]]:
        """Every member of story ``other`` joins ``primary``; returns the members' (id, key)."""
        members = conn.execute(sa.select(articles.c.id, articles.c.key).where(articles.c.story_id == other)).all()
        conn.execute(articles.update().where(articles.c.story_id == other).values(story_id=primary))
        conn.execute(shingles.update().where(shingles.c.story_id == other).values(story_id=primary))
        return [(m.id, m.key) for m in members]

    # -- store writes left until the transaction is durable (``Archive``) -------------------
    @staticmethod
    def queue_writes(conn: Connection, writes: list[dict[str, Any]]) -> list[int]:
        """Record the store writes a commit carries out once its transaction is durable."""
        now = datetime.now(UTC)
        ids = []
        for write in writes:
            ids.append(conn.execute(pending_writes.insert().values(created_at=now, **write)
                                    .returning(pending_writes.c.id)).scalar_one())
        return ids

    def pending(self, ids: list[int] | None = None) -> list[sa.Row[Any]]:
        with self.reading() as conn:
            query = sa.select(pending_writes).order_by(pending_writes.c.id)
            if ids is not None:
                query = query.where(pending_writes.c.id.in_(ids))
            return list(conn.execute(query).all())

    def has_pending(self) -> bool:
        with self.reading() as conn:
            return conn.execute(sa.select(pending_writes.c.id).limit(1)).first() is not None

    def done(self, write_id: int) -> None:
        with self.writing() as conn:
            conn.execute(pending_writes.delete().where(pending_writes.c.id == write_id))

    def current_story(self, article_id: str) -> str | None:
        with self.reading() as conn:
            return conn.execute(sa.select(articles.c.story_id).where(articles.c.id == article_id)).scalar()

    # -- queries ------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self.reading() as conn:
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
        with self.reading() as conn:
            return dict(conn.execute(sa.select(articles.c.id, articles.c.story_id)).all())

    def story_members(self, story_id: str) -> list[sa.Row[Any]]:
        with self.reading() as conn:
            return list(conn.execute(sa.select(articles).where(articles.c.story_id == story_id)
                                     .order_by(articles.c.first_seen, articles.c.id)).all())

    def key_of(self, article_id: str) -> str | None:
        with self.reading() as conn:
            return conn.execute(sa.select(articles.c.key).where(articles.c.id == article_id)).scalar()

    # -- rebuild (``Archive.rebuild``) --------------------------------------------------------
    @staticmethod
    def empty(conn: Connection) -> None:
        """Delete every row derived from the store (inside the rebuild's one transaction)."""
        if conn.dialect.name == "postgresql":
            # crawls' commits (SELECT … FOR UPDATE, INSERT) wait until the swap is done
            conn.exec_driver_sql("LOCK TABLE articles, contents, urls, shingles, bands, editions IN EXCLUSIVE MODE")
        for table in (bands, shingles, urls, contents, articles, editions):
            conn.execute(table.delete())

    def restore(self, conn: Connection, key: str, article: Article, record: dict[str, Any], day: str,
                sh: dedup.Evidence | None) -> None:
        """Insert the rows of one stored record (``sh`` None: an alias, which has no text)."""
        first = datetime.fromisoformat(record.get("first_fetched_at") or record["fetched_at"])
        if sh is None:
            self.insert_article(conn, article, record["story_id"], day, key, first, alias_of=record["alias_of"],
                                version=1, first_seen=first)
        else:
            conn.execute(db.insert_ignore(conn, contents, {"content_hash": article.content_hash,
                                                            "article_id": article.id}))
            self.insert_article(conn, article, record["story_id"], day, key, first, alias_of=None,
                                version=int(record.get("version", 1)), first_seen=first)
            self.insert_shingles(conn, article.id, article.language, day, record["story_id"], sh)
            self.add_editions(conn, article.id, article.editions)
        self.add_urls(conn, article.id, {article.url, article.canonical_url, *record.get("urls", [])})


def _stored_evidence(row: Any) -> dedup.Evidence:
    """A stored article's side of the story decision; NULL columns (rows older than
    migration 0010) leave their checks out."""
    return dedup.Evidence(
        shingles=dedup.unpack(row.data),
        phrases=dedup.unpack(row.phrases) if row.phrases is not None else None,
        paragraphs=dedup.unpack(row.paragraphs) if row.paragraphs is not None else set(),
        numbers=dedup.unpack(row.numbers) if row.numbers is not None else None,
    )


def url_forms(forms: Iterable[str]) -> dict[str, str]:
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
