"""PostgreSQL failing under a crawl, on a private server of this test's own (initdb and
pg_ctl on a spare port; never the machine's shared one): down at the start, restarted
in the middle of a run, connections killed. Each time the run retries or fails clearly,
and no half-written index row hides an article from the next run."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from steppewatch.replay import ReplayServer
from tests.conftest import free_port
from tests.reliability.helpers import (
    FAST,
    ROOT,
    SINCE,
    UNTIL,
    SiteSpec,
    assert_store_and_index_agree,
    crawl,
    write_registry,
    write_site,
)

ARTICLES = 12
BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"))), "")
pytestmark = pytest.mark.skipif(not os.path.exists(f"{BIN}/pg_ctl"), reason="PostgreSQL server binaries not installed")


class PrivatePostgres:
    """A throwaway PostgreSQL cluster, run as the postgres user when the tests run as root."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sw-pg-"))
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, f"{BIN}/{tool}", *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "start", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "restart", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def count(self) -> int:
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql("SELECT count(*) FROM articles").scalar() or 0)
        except sa.exc.SQLAlchemyError:
            return 0
        finally:
            engine.dispose()

    def kill_connections(self) -> int:
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            killed = conn.exec_driver_sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                          "WHERE pid <> pg_backend_pid() AND datname = 'postgres'").scalar()
        engine.dispose()
        return int(killed or 0)


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict]:
    entry = write_site(tmp_path / "sites", SiteSpec("pgfaults.test", "pgfaults", articles=ARTICLES))
    registry = write_registry(tmp_path / "sites.yaml", [entry])
    with ReplayServer(tmp_path / "sites") as server:
        yield {"registry": registry, "proxy": server.url, "store": str(tmp_path / "store")}


def background_crawl(site: dict, index: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "steppewatch.cli", "crawl", "--all", "--since", SINCE, "--until", UNTIL, "--json"]
    for setting in [*FAST, "DOWNLOAD_DELAY=0.25", "CONCURRENT_REQUESTS_PER_DOMAIN=1", "STORE_RETRY_BACKOFF=1"]:
        args += ["--set", setting]
    env = dict(os.environ, STEPPEWATCH_SITES=str(site["registry"]), STEPPEWATCH_STORE=site["store"],
               STEPPEWATCH_INDEX_URL=index, STEPPEWATCH_PROXY=site["proxy"])
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def when_stored(pg: PrivatePostgres, n: int, action: object) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 120
        while pg.count() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        action()  # type: ignore[operator]

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_postgresql_down_at_the_start_fails_clearly(pg: PrivatePostgres, site: dict) -> None:
    pg.stop()
    result = crawl(site["registry"], site["store"], pg.url, site["proxy"])
    assert result.returncode == 3, result.stderr[-2000:]
    assert f"index postgresql+psycopg://postgres@127.0.0.1:{pg.port}/postgres unavailable" in result.stderr
    assert "Traceback" not in result.stderr


def test_postgresql_restarted_mid_run_the_run_completes_and_stores_each_article_once(
        pg: PrivatePostgres, site: dict) -> None:
    proc = background_crawl(site, pg.url)
    watcher = when_stored(pg, 4, pg.restart)
    out, err = proc.communicate(timeout=300)
    watcher.join(timeout=60)
    assert proc.returncode in (0, 3), err[-3000:]
    if proc.returncode == 3:  # failed clearly: the rerun completes
        assert "could not be stored" in err
        rerun = crawl(site["registry"], site["store"], pg.url, site["proxy"])
        assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert assert_store_and_index_agree(site["store"], pg.url)["records"] == ARTICLES


def test_connections_killed_mid_run_are_replaced_and_nothing_is_lost(pg: PrivatePostgres, site: dict) -> None:
    proc = background_crawl(site, pg.url)
    killed: list[int] = []
    watcher = when_stored(pg, 4, lambda: killed.append(pg.kill_connections()))
    out, err = proc.communicate(timeout=300)
    watcher.join(timeout=60)
    assert killed and killed[0] >= 1, "the crawl's connections were there to kill"
    assert proc.returncode == 0, err[-3000:]
    assert assert_store_and_index_agree(site["store"], pg.url)["records"] == ARTICLES
