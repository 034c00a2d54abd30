"""Shared fixtures: paths, the replay server of the sample sites."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steppewatch.replay import ReplayServer

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
