"""The transactional alert outbox: match, record, then send, each (rule, story) once.

Matching records one row per (rule, story) in the index database (unique), before
anything is sent; a story seen again, from another source, a re-crawl or a reprocess,
hits the same row and alerts nobody twice, while an update that newly matches a rule
gets its first row. Sending claims a pending row, builds the message, hands it to the
mailer, and marks it sent only once the SMTP server accepted it; a failure leaves it
pending (attempts and the error recorded) for the next run. Backfill matches are
``held`` (recorded, never sent) or, when the run asks, ``summary`` rows sent as one
message per rule. A backfill of many (site, day) crawls collects its summary rows under
a batch name (``collecting``) and releases them when it ends, so no other sender mails a
half-finished summary.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steppewatch.alerts.mail import DEFAULT_FROM, Mailer, StoryItem, digest_message, story_message
from steppewatch.alerts.rules import RuleSet
from steppewatch.alerts.schedule import last_period
from steppewatch.db import articles, insert_ignore, metadata, utc
from steppewatch.index import Index
from steppewatch.layout import RECORD_PREFIXES, delivered_key, parse_record_key, window_days
from steppewatch.records import BadRecord, RecordReader
from steppewatch.registry import Registry
from steppewatch.store import Store

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
    sa.Column("claim_token", sa.String(32)),  # the sender holding the claim (migration 0011)
    sa.UniqueConstraint("rule", "story_id", name="uq_alert_rule_story"),
)
sa.Index("ix_alert_outbox_status", alert_outbox.c.status, alert_outbox.c.mode)
_outbox_peer = alert_outbox.alias("peer")


def follow_story_merge(conn: Connection, primary: str, other: str) -> None:
    """A rule's alert row follows its story into the story it joined (``Archive``'s merge hook,
    in the merge's transaction), so a story renamed or joined does not alert again for what
    it already alerted; a rule that already has a row for the joined story keeps that one."""
    taken = sa.select(_outbox_peer.c.id).where(_outbox_peer.c.rule == alert_outbox.c.rule,
                                               _outbox_peer.c.story_id == primary)
    conn.execute(alert_outbox.update().where(alert_outbox.c.story_id == other, ~taken.exists())
                 .values(story_id=primary))


# a claim not renewed for this long belongs to a sender that stopped (killed, hung): taken over
LEASE = timedelta(minutes=2)


def record_time(record: dict[str, Any]) -> datetime | None:
    """The instant a record counts at in a window: its publication time, else its fetch time."""
    for field in ("published", "fetched_at"):
        if record.get(field):
            try:
                when = datetime.fromisoformat(str(record[field]).replace("Z", "+00:00"))
            except ValueError:
                continue
            return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    return None


def _sender(mailer: Mailer) -> str:
    """The From address the configured mailer carries (a test's bare mailer has none)."""
    return getattr(mailer, "sender", DEFAULT_FROM)


class Outbox:
    def __init__(self, index: Index, store: Store, rules: RuleSet, registry: Registry | None = None,
                 lease: timedelta = LEASE, clock: Callable[[], datetime] | None = None) -> None:
        self.lease = lease
        # what leases are measured by (claims, renewals, expiry): the time now, unless a test
        # moves it on by hand
        self.clock = clock or (lambda: datetime.now(UTC))
        self.index = index
        self.store = store
        self.rules = rules
        self.countries = {s.id: s.country for s in registry.sites} if registry else {}
        self.reader = RecordReader(store)

    # -- matching ------------------------------------------------------------------------
    def _load(self, key: str) -> dict[str, Any] | None:
        """The record under ``key`` (an alias with its original's text), or None when it is gone
        or unreadable (then named in ``self.reader.skipped``)."""
        record = self.reader.read(key)
        if record is None:
            return None
        if record.get("alias_of"):
            with self.index.engine.connect() as conn:
                owner_key = conn.execute(sa.select(articles.c.key).where(articles.c.id == record["alias_of"])).scalar()
            owner = self.reader.read(owner_key) if owner_key is not None else None
            if owner is None:
                return None
            record["text"] = owner.get("text", "")
        return record

    def match_keys(self, keys: Iterable[str], backfill: bool = False, summary: bool = False,
                   batch: str | None = None) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for key in keys:
            if parse_record_key(key) is None:
                continue
            record = self._load(key)
            if record is None:
                counts["missing"] += 1
                continue
            if not self._current_stories([record["id"]]):
                # an object of a commit that did not land (objects are written before the
                # index commits; a retry may store the article under another key): not stored
                counts["not_indexed"] += 1
                continue
            self._match_record(record, counts, backfill, summary, batch)
        return dict(counts)

    def _match_record(self, record: dict[str, Any], counts: Counter[str], backfill: bool, summary: bool,
                      batch: str | None) -> None:
        now = datetime.now(UTC)
        counts["examined"] += 1
        for match in self.rules.matches(record, self.countries.get(record.get("site", ""))):
            rule = self.rules.get(match.rule).rule
            mode, status = rule.mode, "pending"
            if backfill and (summary or batch):
                mode, status = "summary", ("collecting" if batch else "pending")
            elif backfill:
                mode, status = rule.mode, "held"
            with self.index.engine.begin() as conn:
                inserted = conn.execute(insert_ignore(conn, alert_outbox, {
                    "rule": rule.name, "story_id": record.get("story_id") or record["id"],
                    "article_id": record["id"], "mode": mode, "status": status, "matched_at": now,
                    "published": utc(datetime.fromisoformat(record["published"])) if record.get("published")
                    else None,
                    "occurrences": match.occurrences, "snippet_text": match.snippet_text,
                    "snippet_html": match.snippet_html, "batch": batch if mode == "summary" else None,
                }).returning(alert_outbox.c.id)).first()
            counts["new_matches" if inserted else "already_matched"] += 1

    def records_in_window(self, since: datetime, until: datetime,
                          sites: list[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(key, record) of the stored records published in [since, until): the instant, not the
        day. A record without a publication time counts at its fetch time, the time it is filed
        under (``layout.storage_day``). Keys are filed by that time's UTC day, so only the
        window's days are read."""
        since, until = since.astimezone(UTC), until.astimezone(UTC)
        days = window_days(since, until)
        if days is None:
            return
        for prefix in RECORD_PREFIXES:
            for key in self.store.list(prefix):
                parsed = parse_record_key(key)
                if parsed is None or (sites and parsed.site not in sites) or not days[0] <= parsed.day <= days[1]:
                    continue
                record = self._load(key)
                if record is None:
                    continue
                when = record_time(record)
                if when is None or since <= when < until:
                    yield key, record

    def match_window(self, since: datetime, until: datetime, sites: list[str] | None = None,
                     backfill: bool = False, summary: bool = False, batch: str | None = None) -> dict[str, int]:
        """Match the stored records published in [since, until) (``records_in_window``)."""
        counts: Counter[str] = Counter()
        for _key, record in self.records_in_window(since, until, sites):
            self._match_record(record, counts, backfill, summary, batch)
        return dict(counts)

    # -- sending ----------------------------------------------------------------------------
    def release(self, batch: str) -> int:
        """Make a finished backfill's collected summary rows sendable; returns how many."""
        with self.index.engine.begin() as conn:
            return conn.execute(alert_outbox.update()
                                .where(alert_outbox.c.batch == batch, alert_outbox.c.status == "collecting")
                                .values(status="pending")).rowcount

    def pending(self) -> list[sa.Row[Any]]:
        with self.index.engine.connect() as conn:
            return list(conn.execute(sa.select(alert_outbox).where(alert_outbox.c.status == "pending")
                                     .order_by(alert_outbox.c.id)).all())

    def _claim(self, ids: list[int]) -> str | None:
        """Claim rows for sending; the claim's fencing token, or None when another holds one."""
        token = uuid.uuid4().hex
        with self.index.engine.connect() as conn, conn.begin() as transaction:
            done = conn.execute(alert_outbox.update()
                                .where(alert_outbox.c.id.in_(ids), alert_outbox.c.status == "pending")
                                .values(status="sending", claimed_at=self.clock(), claim_token=token)).rowcount
            if done != len(ids):  # someone else is sending some of them: leave them all to it
                transaction.rollback()
                return None
        return token

    def _renew(self, token: str) -> bool:
        """Extend the lease of a claim still held; False once it was taken over."""
        with self.index.engine.begin() as conn:
            return conn.execute(alert_outbox.update().where(alert_outbox.c.claim_token == token,
                                                            alert_outbox.c.status == "sending")
                                .values(claimed_at=self.clock())).rowcount > 0

    @contextmanager
    def _lease(self, token: str) -> Iterator[None]:
        """Renew the claim every third of its lease while the block runs (a slow server, a big
        digest), so no other sender takes it over while this one is alive."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lease.total_seconds() / 3):
                if not self._renew(token):
                    return

        thread = threading.Thread(target=renew, name="outbox-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _settle(self, ids: list[int], error: str | None, token: str) -> bool:
        """Record the outcome of a send, only as the claim's holder (a sender whose lease was
        taken over changes nothing); False when the claim was no longer this sender's."""
        held = (alert_outbox.c.id.in_(ids), alert_outbox.c.claim_token == token)
        with self.index.engine.begin() as conn:
            if error is None:
                done = conn.execute(alert_outbox.update().where(*held).values(
                    status="sent", sent_at=datetime.now(UTC), attempts=alert_outbox.c.attempts + 1,
                    claim_token=None)).rowcount
            else:
                done = conn.execute(alert_outbox.update().where(*held, alert_outbox.c.status == "sending").values(
                    status="pending", claimed_at=None, claim_token=None, last_error=error[:2000],
                    attempts=alert_outbox.c.attempts + 1)).rowcount
        return done == len(ids)

    def _partial(self, ids: list[int], refused: dict[str, Any]) -> None:
        with self.index.engine.begin() as conn:
            conn.execute(alert_outbox.update().where(alert_outbox.c.id.in_(ids))
                         .values(last_error=f"refused by the server: {', '.join(sorted(refused))}"[:2000]))

    def _release_stale(self) -> None:
        """Rows whose sender stopped renewing its lease go back to pending."""
        with self.index.engine.begin() as conn:
            conn.execute(alert_outbox.update()
                         .where(alert_outbox.c.status == "sending",
                                alert_outbox.c.claimed_at < self.clock() - self.lease)
                         .values(status="pending", claimed_at=None, claim_token=None))

    def _current_stories(self, article_ids: list[str]) -> dict[str, str]:
        """The story each article is in now (stories are joined as copies are found)."""
        if not article_ids:
            return {}
        with self.index.engine.connect() as conn:
            return dict(conn.execute(sa.select(articles.c.id, articles.c.story_id)
                                     .where(articles.c.id.in_(sorted(set(article_ids))))).all())

    def _sent_articles(self, rule: str) -> list[str]:
        with self.index.engine.connect() as conn:
            return list(conn.execute(sa.select(alert_outbox.c.article_id).where(
                alert_outbox.c.rule == rule, alert_outbox.c.status.in_(("sent", "sending")))).scalars())

    def _settle_merged(self, row_id: int) -> None:
        """A row whose story was sent for its rule under another row: done, nothing sent."""
        with self.index.engine.begin() as conn:
            conn.execute(alert_outbox.update().where(alert_outbox.c.id == row_id, alert_outbox.c.status == "pending")
                         .values(status="merged", sent_at=datetime.now(UTC)))

    def story_item(self, row: Any) -> StoryItem:
        """The story of a row as a message item: headlined by the member that matches the rule
        most strongly (a hit in its title, then most occurrences, then the earliest; the row's
        own article on a tie), "also reported by" the story's other members."""
        story = self._current_stories([row.article_id]).get(row.article_id, row.story_id)
        with self.index.engine.connect() as conn:
            members = conn.execute(sa.select(articles).where(articles.c.story_id == story)
                                   .order_by(articles.c.published, articles.c.id)).all()
        head, record, snippet = self._headline(row, members)
        if record is None:  # nothing of the story matches now: the row's article as it was matched
            me = next((m for m in members if m.id == row.article_id), None)
            record = self._load(me.key) if me is not None else None
            head = me.id if me is not None and record is not None else None
            if record is None:  # the article moved (an earlier original took over): its story's holder
                holder = next(((m, r) for m in members if m.alias_of is None and (r := self._load(m.key))), None)
                if holder is not None:
                    head, record = holder[0].id, holder[1]
        record = record or {"title": "(record missing)", "canonical_url": "", "site": "", "published": None}
        snippet = snippet or (row.snippet_text or "", row.snippet_html or "")
        also = tuple((m.site, m.title or "", m.canonical_url) for m in members if m.id != (head or row.article_id))
        return StoryItem(title=record.get("title") or "", url=record.get("canonical_url") or "",
                         site=record.get("site") or "", published=record.get("published"),
                         language=record.get("language"), snippet_text=snippet[0], snippet_html=snippet[1],
                         also=also)

    def _headline(self, row: Any, members: list[Any]) -> tuple[str | None, dict[str, Any] | None,
                                                                tuple[str, str] | None]:
        """(article id, record, (snippet text, snippet html)) of the story's member that matches
        the row's rule most strongly, or Nones when none matches (the rule gone, records gone)."""
        try:
            rules = self.rules.only(self.rules.get(row.rule))
        except ValueError:
            return None, None, None
        best: tuple[tuple[Any, ...], str, dict[str, Any], tuple[str, str]] | None = None
        for order, member in enumerate(members):
            record = self._load(member.key)
            if record is None:
                continue
            found = rules.matches(record, self.countries.get(record.get("site", "")))
            if not found:
                continue
            match = found[0]
            when = utc(member.published) if member.published else None
            rank = (match.title_hits == 0, -match.occurrences, when is None, when or datetime.min.replace(tzinfo=UTC),
                    member.id != row.article_id, order)
            if best is None or rank < best[0]:
                best = (rank, member.id, record, (match.snippet_text, match.snippet_html))
        return (None, None, None) if best is None else best[1:]

    def _deliver(self, mailer: Mailer, rows: list[Any], build: Any) -> str:
        ids = [r.id for r in rows]
        token = self._claim(ids)
        if token is None:
            return "skipped"
        delivered = [r for r in rows if self.store.exists(delivered_key(r.rule, r.story_id))]
        if len(delivered) == len(rows):
            # the store says it went out (a sender that stopped after the server accepted it,
            # an index rebuilt or restored from an older copy): never send it again
            self._settle(ids, None, token)
            return "already_delivered"
        with self._lease(token):
            try:
                message = build()
                refused = mailer.send(message)
            except Exception as exc:  # noqa: BLE001 — any delivery failure leaves the rows pending
                self._settle(ids, f"{type(exc).__name__}: {exc}", token)
                return "failed"
            # the store first: it outlives the index (``restore_delivered`` reads it back)
            self._mark_delivered(rows)
            self._settle(ids, None, token)
        if refused:
            self._partial(ids, refused)
        return "sent"

    def _mark_delivered(self, rows: list[Any]) -> None:
        now = datetime.now(UTC).isoformat()
        for row in rows:
            marker = {"rule": row.rule, "story_id": row.story_id, "article_id": row.article_id, "mode": row.mode,
                      "sent_at": now, "matched_at": utc(row.matched_at).isoformat() if row.matched_at else now}
            self.store.put(delivered_key(row.rule, row.story_id), json.dumps(marker).encode("utf-8"),
                           "application/json")

    def send(self, mailer: Mailer, now: datetime | None = None) -> dict[str, int]:
        now = now or datetime.now(UTC)
        self._release_stale()
        counts: Counter[str] = Counter()
        rows = self.pending()
        by_rule: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
        for row in rows:
            by_rule[(row.rule, row.mode, row.batch or "")].append(row)
        for (rule_name, mode, _batch), group in sorted(by_rule.items()):
            try:
                rule = self.rules.get(rule_name).rule
            except ValueError:
                counts["rule_gone"] += len(group)
                continue
            if mode == "immediate":
                # one message per story: rows matched before two copies were found to be one
                # story (concurrent runs, an earlier original taking over) name the story
                # their article is in now, and a story already sent for the rule is not sent again
                stories = self._current_stories([r.article_id for r in group] + self._sent_articles(rule.name))
                told = {stories.get(a, a) for a in self._sent_articles(rule.name)}
                for row in group:
                    story = stories.get(row.article_id, row.story_id)
                    if story in told:
                        self._settle_merged(row.id)
                        counts["immediate_merged"] += 1
                        continue
                    told.add(story)
                    key = f"{rule.name}/{story}"
                    outcome = self._deliver(mailer, [row], lambda row=row, key=key, rule=rule: story_message(
                        rule.name, rule.recipients, self.story_item(row), key, _sender(mailer)))
                    counts[f"immediate_{outcome}"] += 1
                continue
            if mode == "digest":
                assert rule.schedule is not None
                start, end = last_period(rule.schedule, rule.timezone, now)
                due = [r for r in group if utc(r.matched_at) < end]
                label = f"{start.isoformat()} … {end.isoformat()}"
            else:  # backfill summary
                due = group
                days = sorted(utc(r.published).date().isoformat() for r in group if r.published)
                label = f"{days[0]} … {days[-1]}" if days else "backfill"
            if not due:
                continue
            due.sort(key=lambda r: (utc(r.published) or datetime.min.replace(tzinfo=UTC)), reverse=True)
            key = f"{rule.name}/{mode}/{label}/{len(due)}"
            outcome = self._deliver(mailer, due, lambda due=due, label=label, key=key, rule=rule: digest_message(
                rule.name, rule.recipients, [self.story_item(r) for r in due], label, key, _sender(mailer)))
            counts[f"{mode}_{outcome}"] += 1
            counts[f"{mode}_stories"] += len(due)
        return dict(counts)

    def status(self) -> dict[str, int]:
        with self.index.engine.connect() as conn:
            return dict(conn.execute(sa.select(alert_outbox.c.status, sa.func.count())
                                     .group_by(alert_outbox.c.status)).all())


def restore_delivered(index: Index, store: Store, reader: RecordReader) -> dict[str, int]:
    """Record as sent every alert the store's ``delivered/`` markers name (after ``reindex``
    rebuilt a lost index, say), so that matching again sends none of them twice."""
    counts: Counter[str] = Counter()
    stories = dict(index.stories())
    for key in store.list("delivered/"):
        try:
            marker = json.loads(store.get(key))
            rule, article = str(marker["rule"]), str(marker["article_id"])
            story = stories.get(article, str(marker["story_id"]))
            sent_at = datetime.fromisoformat(marker["sent_at"])
            matched_at = datetime.fromisoformat(marker.get("matched_at") or marker["sent_at"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reader.skipped.append(BadRecord(key, f"unreadable delivery marker: {exc}"))
            continue
        with index.engine.begin() as conn:
            done = conn.execute(alert_outbox.update().where(
                alert_outbox.c.rule == rule, alert_outbox.c.story_id == story,
                alert_outbox.c.status != "sent").values(status="sent", sent_at=sent_at)).rowcount
            inserted = conn.execute(insert_ignore(conn, alert_outbox, {
                "rule": rule, "story_id": story, "article_id": article, "mode": marker.get("mode") or "immediate",
                "status": "sent", "matched_at": matched_at, "sent_at": sent_at,
            }).returning(alert_outbox.c.id)).first()
        counts["restored" if inserted or done else "known"] += 1
    return dict(counts)
