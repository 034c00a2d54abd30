"""Delivery with fencing: a claim carries a token and a lease its sender renews while it works.

- a sender slower than the lease is not overtaken while it is alive (one delivery);
- a sender killed after the server accepted the message (before "sent" was recorded) is taken
  over once its lease runs out, and the message goes out again with the same Message-ID, which
  lets the receiver drop the repeat (SMTP gives no more than at-least-once);
- a sender whose claim was taken over changes nothing when it finally settles.

Time is a clock the test moves by hand (``Outbox(clock=…)``): no test waits on the wall clock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from steppewatch.alerts.outbox import LEASE, Outbox
from tests.test_alerts import _article, _outbox


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 12, 3, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def pass_(self, delta: timedelta) -> None:
        self.now += delta


class Killed(BaseException):  # noqa: N818 — a process stopping, which nothing catches
    pass


class Recorder:
    """A mailer that keeps what it accepts; it may run ``during`` first, or die after accepting."""

    def __init__(self, during: Any = None, die_after_accepting: bool = False) -> None:
        self.during = during
        self.die = die_after_accepting
        self.accepted: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> dict:
        if self.during is not None:
            self.during()
        self.accepted.append(message)  # the server's 250
        if self.die:
            raise Killed
        return {}


def claim_token(index: Any) -> str | None:
    import sqlalchemy as sa

    from steppewatch.alerts.outbox import alert_outbox

    with index.engine.connect() as conn:
        return conn.execute(sa.select(alert_outbox.c.claim_token).where(alert_outbox.c.status == "sending")).scalar()


def _pending(tmp_path: Path) -> tuple[Outbox, Any, Any]:
    outbox, store, index = _outbox(tmp_path, [{"name": "r", "query": "Astana", "recipients": ["a@example.org"]}])
    outbox.match_keys([_article(store, index, "Astana talks resume", "Talks in Astana went on.\nAstana again.")])
    return outbox, store, index


def test_a_sender_slower_than_its_lease_is_not_overtaken(tmp_path: Path) -> None:
    outbox, store, index = _pending(tmp_path)
    clock = Clock()
    first = Outbox(index, store, outbox.rules, clock=clock)
    other = Recorder()
    results: dict[str, Any] = {}

    def slow_server() -> None:
        # the send takes three leases; its sender renews the claim each lease (what its lease
        # thread does every third of one), and another sender tries at every turn
        for _ in range(3):
            clock.pass_(LEASE * 0.9)
            token = claim_token(index)
            assert token is not None and first._renew(token)  # noqa: SLF001 — the renewal, made visible
            results.setdefault("second", []).append(Outbox(index, store, outbox.rules, clock=clock).send(other))

    slow = Recorder(during=slow_server)
    assert first.send(slow) == {"immediate_sent": 1}
    assert results["second"] == [{}, {}, {}] and other.accepted == [], "never overtaken while renewing"
    assert len(slow.accepted) == 1 and outbox.status() == {"sent": 1}


def test_the_lease_is_renewed_while_a_send_runs(tmp_path: Path) -> None:
    outbox, store, index = _pending(tmp_path)
    renewed = threading.Event()
    sender = Outbox(index, store, outbox.rules, lease=timedelta(seconds=0.03))
    renew = sender._renew  # noqa: SLF001

    def counting(token: str) -> bool:
        ok = renew(token)
        renewed.set()
        return ok

    sender._renew = counting  # type: ignore[method-assign]  # noqa: SLF001
    # the server answers once the lease thread has renewed the claim at least once
    assert sender.send(Recorder(during=lambda: renewed.wait(60))) == {"immediate_sent": 1}
    assert renewed.is_set()


def test_a_sender_killed_after_the_server_accepted_is_taken_over_with_the_same_message_id(tmp_path: Path) -> None:
    outbox, store, index = _pending(tmp_path)
    clock = Clock()
    dying = Recorder(die_after_accepting=True)
    try:
        Outbox(index, store, outbox.rules, clock=clock).send(dying)
    except Killed:
        pass
    assert outbox.status() == {"sending": 1}
    clock.pass_(LEASE / 2)
    early = Recorder()
    assert Outbox(index, store, outbox.rules, clock=clock).send(early) == {} and not early.accepted, \
        "the lease has not run out yet"
    clock.pass_(LEASE)  # the dead sender renews nothing
    again = Recorder()
    assert Outbox(index, store, outbox.rules, clock=clock).send(again) == {"immediate_sent": 1}
    assert [m["Message-ID"] for m in again.accepted] == [m["Message-ID"] for m in dying.accepted]
    assert outbox.status() == {"sent": 1}


def test_a_sender_whose_claim_was_taken_over_changes_nothing(tmp_path: Path) -> None:
    outbox, store, index = _pending(tmp_path)
    clock = Clock()
    sender = Outbox(index, store, outbox.rules, clock=clock)
    (row,) = sender.pending()
    token = sender._claim([row.id])  # noqa: SLF001 — the protocol's steps, one at a time
    assert token is not None
    clock.pass_(LEASE * 2)
    sender._release_stale()  # noqa: SLF001 — another sender finds the lease expired
    taker = sender._claim([row.id])  # noqa: SLF001
    assert taker is not None and taker != token
    assert not sender._renew(token), "the old holder's renewal fails"  # noqa: SLF001
    assert not sender._settle([row.id], "timeout", token), "the old holder cannot return it to pending"  # noqa: SLF001
    assert sender._settle([row.id], None, taker)  # noqa: SLF001
    assert outbox.status() == {"sent": 1}


def test_a_pending_alert_follows_its_story_through_a_merge(tmp_path: Path) -> None:
    """When stories merged while alerts were pending, the absorbed story's alert went out as
    "(record missing)" with no URL: now one message for the joined story, with a real headline."""
    from dataclasses import replace

    import yaml

    from steppewatch.alerts.rules import load_rules
    from steppewatch.archive import Archive
    from steppewatch.index import Index
    from steppewatch.store import LocalStore
    from tests.test_editions_index import SITE, edition

    rules = tmp_path / "alerts.yaml"
    rules.write_text(yaml.safe_dump({"rules": [{"name": "r", "query": "Astana", "recipients": ["a@example.org"]}]}))
    store, index = LocalStore(tmp_path / "store"), Index(f"sqlite:///{tmp_path}/i.sqlite")
    outbox = Outbox(index, store, load_rules(rules))
    en_path, ru_path = "/en/news/2024/12/03/astana/", "/ru/news/2024/12/03/astana/"
    en = replace(edition(en_path, 0, "en", {f"{SITE}{ru_path}": "ru"}, "2024-12-03T10:40:00+05:00"),
                 title="Astana talks resume")
    ru = replace(edition(ru_path, 1, "ru", {}, "2024-12-03T10:00:00+05:00"), title="Переговоры в Астане (Astana)")
    keys = [Archive(index, store).commit(a, b"<html></html>").keys[1] for a in (en, ru)]  # ru declares nothing yet
    assert len(set(index.stories().values())) == 2
    outbox.match_keys(keys)
    assert outbox.status() == {"pending": 2}
    # the Russian page, fetched again, now declares its English edition: the two stories join
    ru_again = replace(ru, editions={f"{SITE}{en_path}": "en"}, text=ru.text + " updated",
                       content_hash=ru.content_hash[::-1])
    Archive(index, store).commit(ru_again, b"<html>v2</html>")
    assert len(set(index.stories().values())) == 1
    mailer = Recorder()
    counts = outbox.send(mailer)
    assert counts == {"immediate_sent": 1, "immediate_merged": 1}, counts
    (message,) = mailer.accepted
    assert "(record missing)" not in str(message["Subject"])
    body = message.get_body(("plain",)).get_content()
    assert f"{SITE}{en_path}" in body and f"{SITE}{ru_path}" in body, "headline and 'also reported by'"
    assert outbox.send(Recorder()) == {}
