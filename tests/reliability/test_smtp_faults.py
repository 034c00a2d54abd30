"""The mail server failing for real (aiosmtpd on 127.0.0.1): not there, refusing one
recipient, dropping the connection before or after it accepted a message. Pending
alerts survive in the outbox and each is sent exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from steppewatch.alerts.mail import SMTPMailer
from tests.conftest import SMTPSink, free_port
from tests.test_alerts import _article, _distinct, _outbox

RULE = [{"name": "r", "query": "Astana", "recipients": ["a@example.org", "b@example.org"]}]


class DroppingSink(SMTPSink):
    """Drops the connection during DATA (``before``: nothing accepted) or right after answering 250."""

    def __init__(self, when: str, times: int = 1) -> None:
        super().__init__()
        self.when, self.left = when, times
        sink = self
        handler = self.controller.handler
        accept = handler.handle_DATA

        async def handle_DATA(server, session, envelope):  # noqa: N802, ANN001, ANN202
            if sink.left <= 0:
                return await accept(server, session, envelope)
            sink.left -= 1
            if sink.when == "before":
                server.transport.close()
                return "451 never seen"
            reply = await accept(server, session, envelope)
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
            return reply

        handler.handle_DATA = handle_DATA


def _matched(tmp_path: Path, n: int = 2):  # noqa: ANN202
    outbox, store, index = _outbox(tmp_path, RULE)
    keys = [_article(store, index, f"Astana story {k}", _distinct(k)) for k in range(n)]
    assert outbox.match_keys(keys)["new_matches"] == n
    return outbox


def test_smtp_down_leaves_alerts_pending_and_sends_each_once_when_back(tmp_path: Path) -> None:
    outbox = _matched(tmp_path)
    port = free_port()
    assert outbox.send(SMTPMailer("127.0.0.1", port, timeout=5)) == {"immediate_failed": 2}
    assert outbox.status() == {"pending": 2}
    sink = SMTPSink(port).start()
    try:
        assert outbox.send(SMTPMailer("127.0.0.1", port)) == {"immediate_sent": 2}
        assert outbox.send(SMTPMailer("127.0.0.1", port)) == {}
    finally:
        sink.stop()
    assert len(sink.messages) == 2 and outbox.status() == {"sent": 2}


def test_a_refused_recipient_does_not_block_the_others(tmp_path: Path) -> None:
    outbox = _matched(tmp_path, 1)
    sink = SMTPSink().start()
    sink.refuse.add("a@example.org")
    try:
        assert outbox.send(SMTPMailer("127.0.0.1", sink.port)) == {"immediate_sent": 1}
    finally:
        sink.stop()
    assert [rcpts for rcpts, _ in sink.messages] == [["b@example.org"]]
    assert outbox.status() == {"sent": 1}


def test_a_connection_dropped_before_the_message_was_accepted_is_retried_once(tmp_path: Path) -> None:
    outbox = _matched(tmp_path, 1)
    sink = DroppingSink("before").start()
    try:
        assert outbox.send(SMTPMailer("127.0.0.1", sink.port, timeout=5)) == {"immediate_failed": 1}
        assert outbox.status() == {"pending": 1} and sink.messages == []
        assert outbox.send(SMTPMailer("127.0.0.1", sink.port)) == {"immediate_sent": 1}
        assert outbox.send(SMTPMailer("127.0.0.1", sink.port)) == {}
    finally:
        sink.stop()
    assert len(sink.messages) == 1


def test_a_connection_dropped_after_the_server_accepted_is_not_sent_again(tmp_path: Path) -> None:
    outbox = _matched(tmp_path, 1)
    sink = DroppingSink("after").start()
    try:
        assert outbox.send(SMTPMailer("127.0.0.1", sink.port, timeout=5)) == {"immediate_sent": 1}
        assert outbox.send(SMTPMailer("127.0.0.1", sink.port)) == {}
    finally:
        sink.stop()
    assert len(sink.messages) == 1 and outbox.status() == {"sent": 1}
