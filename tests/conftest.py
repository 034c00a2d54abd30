"""Shared fixtures: paths, the replay server of the sample sites."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from steppewatch.replay import ReplayServer

# property tests draw the same examples every run: a CI run must not fail on an example no
# earlier run drew (one found that way is kept as an explicit @example); `--hypothesis-seed`
# or HYPOTHESIS_PROFILE=explore explores anew
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(__import__("os").environ.get("HYPOTHESIS_PROFILE", "ci"))

# hypothesis writes a patch for each failing example with libcst, which raises inside
# pytest's report hook here (zope.interface's __provides__, from Twisted) and ends the
# whole session as an INTERNALERROR; without the module the failure is reported as usual
sys.modules.setdefault("hypothesis.extra._patching", None)  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SEEDS = ROOT.parent / "shared" / "seeds"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    server = ReplayServer(FIXTURES / "sites")
    server.start()
    yield server
    server.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode on 127.0.0.1: boto3 talks S3 to it over HTTP."""
    import os

    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in [*S3_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(S3_ENV, AWS_ENDPOINT_URL=endpoint)
    yield endpoint
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture
def bucket(moto_server: str) -> str:
    import uuid

    import boto3

    name = f"sw-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=name)
    return name


PG_URL = __import__("os").environ.get("STEPPEWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_index_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the machine's server, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    name = f"sw_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


class SMTPSink:
    """aiosmtpd on 127.0.0.1: a real SMTP server that keeps what it accepts."""

    def __init__(self, port: int | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse: set[str] = set()
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802, ANN001, ANN201
                if address in sink.refuse:
                    return "550 5.1.1 mailbox unavailable"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
                sink.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
                return "250 Message accepted for delivery"

        self.port = port or free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SMTPSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def parsed(self) -> list:
        from email import message_from_bytes, policy

        return [message_from_bytes(raw, policy=policy.default) for _, raw in self.messages]


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    sink = SMTPSink().start()
    yield sink
    sink.stop()
