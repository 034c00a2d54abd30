"""Delivery with fencing: a claim carries a token and a lease its sender renews while it works.

- a sender slower than the lease is not overtaken while it is alive (one delivery);
- a sender killed after the server accepted the message (before "sent" was recorded) is taken
  over once its lease runs out, and the message goes out again with the same Message-ID, which
  lets the receiver drop the repeat (SMTP gives no more than at-least-once);
- a sender whose claim was taken over changes nothing when it finally settles.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

from steppewatch.alerts.outbox import Outbox
from tests.test_alerts import _article, _outbox

LEASE = timedelta(seconds=0.4)


class Killed(BaseException):  # noqa: N818 — a process stopping, which nothing catches
    pass


class Recorder:
    """A mailer that keeps what it accepts, taking ``delay`` seconds, then maybe dying."""

    def __init__(self, delay: float = 0.0, die_after_accepting: bool = False) -> None:
        self.delay = delay
        self.die = die_after_accepting
        self.accepted: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> dict:
        time.sleep(self.delay)
        self.accepted.append(message)  # the server's 250
        if self.die:
            raise Killed
        return {}


def _pending(tmp_path: Path) -> tuple[Outbox, object, object]:
    outbox, store, index = _outbox(tmp_path, [{"name": "r", "query": "Astana", "recipients": ["a@example.org"]}])
    outbox.match_keys([_article(store, index, "Astana talks resume", "Talks in Astana went on.\nAstana again.")])
    return outbox, store, index


def test_a_sender_slower_than_its_lease_is_not_overtaken(tmp_path: Path) -> None:
    outbox, store, index = _pending(tmp_path)
    slow = Recorder(delay=LEASE.total_seconds() * 4)
    first = Outbox(index, store, outbox.rules, lease=LEASE)
    done: dict = {}
    thread = threading.Thread(target=lambda: done.update(first.send(slow)))
    thread.start()
    time.sleep(LEASE.total_seconds() * 2.5)  # well past the lease: only renewal keeps the claim
    other = Recorder()
    second = Outbox(index, store, outbox.rules, lease=LEASE).send(other)
    thread.join()
    assert done == {"immediate_sent": 1} and other.accepted == [] and second == {}, second
    assert len(slow.accepted) == 1
    assert Outbox(index, store, outbox.rules, lease=LEASE).send(Recorder()) == {}, "nothing left to send"


def test_a_sender_killed_after_the_server_accepted_is_taken_over_with_the_same_message_id(tmp_path: Path) -> None:
    outbox, store, index = _pending(tmp_path)
    dying = Recorder(die_after_accepting=True)
    try:
        Outbox(index, store, outbox.rules, lease=LEASE).send(dying)
    except Killed:
        pass
    assert outbox.status() == {"sending": 1}
    early = Recorder()
    assert Outbox(index, store, outbox.rules, lease=LEASE).send(early) == {} and not early.accepted, \
        "the lease has not run out yet"
    time.sleep(LEASE.total_seconds() * 1.5)  # the dead sender renews nothing
    again = Recorder()
    assert Outbox(index, store, outbox.rules, lease=LEASE).send(again) == {"immediate_sent": 1}
    assert [m["Message-ID"] for m in again.accepted] == [m["Message-ID"] for m in dying.accepted]
    assert outbox.status() == {"sent": 1}


def test_a_sender_whose_claim_was_taken_over_changes_nothing(tmp_path: Path) -> None:
    outbox, store, index = _pending(tmp_path)
    sender = Outbox(index, store, outbox.rules, lease=LEASE)
    (row,) = sender.pending()
    token = sender._claim([row.id])  # noqa: SLF001 — the protocol's steps, one at a time
    assert token is not None
    time.sleep(LEASE.total_seconds() * 1.5)
    sender._release_stale()  # noqa: SLF001 — another sender finds the lease expired
    taker = sender._claim([row.id])  # noqa: SLF001
    assert taker is not None and taker != token
    assert not sender._settle([row.id], "timeout", token), "the old holder cannot return it to pending"  # noqa: SLF001
    assert sender._settle([row.id], None, taker)  # noqa: SLF001
    assert outbox.status() == {"sent": 1}
