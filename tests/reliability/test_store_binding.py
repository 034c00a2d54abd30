"""An index kept while the store changes: refused, never a silent empty store (RELIABILITY row 100).

An index describes one store's contents. Pointed at a new directory or bucket with the old
index, a crawl used to call every URL already stored, write nothing and exit 0. The index
now records its store (migration 0013) and every command that trusts it about the store
(crawl, reprocess, alerts match) refuses another store before fetching anything, naming
both; ``reindex`` rebuilds it from the store given and rebinds it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from steppewatch.errors import ExitCode
from steppewatch.index import Index, StoreMismatch
from steppewatch.replay import ReplayServer
from steppewatch.store import LocalStore, S3Store
from tests.reliability.helpers import (
    ROOT,
    SINCE,
    UNTIL,
    SiteSpec,
    assert_store_and_index_agree,
    crawl,
    write_registry,
    write_site,
)

HOST = "bound.test"
SECRET = "s3cr/et@pw"  # in the PostgreSQL URL (trust auth ignores it): never printed


@pytest.fixture(params=["sqlite", "postgresql"])
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/index.sqlite"
    url: str = request.getfixturevalue("pg_index_url")
    return url.replace("://postgres@", f"://postgres:{SECRET}@")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, ReplayServer]]:
    registry = write_registry(tmp_path / "sites.yaml", [write_site(tmp_path / "sites", SiteSpec(HOST, "bound"))])
    server = ReplayServer(tmp_path / "sites")
    server.start()
    yield registry, server
    server.stop()


def cli(registry: Path, store: str, index: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STEPPEWATCH_SITES=str(registry), STEPPEWATCH_STORE=store, STEPPEWATCH_INDEX_URL=index)
    return subprocess.run([sys.executable, "-m", "steppewatch.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def index_state(url: str) -> tuple[str | None, dict[str, int]]:
    index = Index(url)
    try:
        return index.bound_store(), index.counts()
    finally:
        index.engine.dispose()


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_refused(stderr: str, index_url: str, bound: str, given: str) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]
    assert f"belongs to store {bound}, not to store {given}" in stderr, stderr[-3000:]
    assert "steppewatch reindex" in stderr and "a new index" in stderr and "the index's own store" in stderr
    assert SECRET not in stderr and "s3cr" not in stderr
    assert index_url.split("@")[-1] in stderr  # the index is named, its password redacted


def test_an_index_kept_with_another_store_is_refused_and_reindex_moves_it(
        index_url: str, site: tuple[Path, ReplayServer], tmp_path: Path) -> None:
    registry, server = site
    store_a, store_b = tmp_path / "a", tmp_path / "b"

    first = crawl(registry, str(store_a), index_url, server.url)
    assert first.returncode == 0 and first.summary is not None, first.stderr[-3000:]
    assert first.summary["totals"]["stored"] == 6
    bound, counts = index_state(index_url)
    assert bound == str(store_a)
    a_files = files(store_a)

    # the same window, the same index, another store: refused before any request
    hits = len(server.hits)
    refused = crawl(registry, str(store_b), index_url, server.url)
    assert refused.returncode == ExitCode.USAGE, refused.stderr[-3000:]
    assert_refused(refused.stderr, index_url, str(store_a), str(store_b))
    assert len(server.hits) == hits, "a page was fetched"
    assert files(store_b) == []
    assert index_state(index_url) == (str(store_a), counts)
    assert files(store_a) == a_files

    # every other command that trusts the index about the store refuses it too
    for args in (("reprocess", "--since", SINCE, "--until", UNTIL),
                 ("alerts", "match", "--since", SINCE, "--until", UNTIL)):
        proc = cli(registry, str(store_b), index_url, *args)
        assert proc.returncode == ExitCode.USAGE, (args, proc.stderr[-3000:])
        assert_refused(proc.stderr, index_url, str(store_a), str(store_b))
    assert files(store_b) == [] and index_state(index_url) == (str(store_a), counts)

    # the way out: reindex from store B, which binds the index to B; then B is crawled into
    reindexed = cli(registry, str(store_b), index_url, "reindex")
    assert reindexed.returncode == 0, reindexed.stderr[-3000:]
    assert json.loads(reindexed.stdout)["articles"] == 0
    assert f"belonged to store {store_a}" in reindexed.stderr
    assert SECRET not in reindexed.stdout + reindexed.stderr
    assert index_state(index_url)[0] == str(store_b)
    second = crawl(registry, str(store_b), index_url, server.url)
    assert second.returncode == 0 and second.summary is not None, second.stderr[-3000:]
    assert second.summary["totals"]["stored"] == 6
    assert assert_store_and_index_agree(str(store_b), index_url.replace(f":{SECRET}", "")) == \
        {"records": 6, "aliases": 0}
    assert files(store_a) == a_files

    # the index is B's now: A (spelled another way, relative to the working directory) is refused
    relative = os.path.relpath(store_a, ROOT)
    back = crawl(registry, relative, index_url, server.url)
    assert back.returncode == ExitCode.USAGE
    assert_refused(back.stderr, index_url, str(store_b), str(store_a))


def test_one_store_spelled_otherwise_is_the_same_store(site: tuple[Path, ReplayServer], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from steppewatch.index import check_index
    from steppewatch.store import open_store

    registry, server = site
    index_url = f"sqlite:///{tmp_path}/index.sqlite"
    store = tmp_path / "store"
    (tmp_path / "link").symlink_to(store, target_is_directory=True)
    assert crawl(registry, str(store), index_url, server.url).returncode == 0
    again = crawl(registry, os.path.relpath(store, ROOT), index_url, server.url)  # relative to the crawl's directory
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.summary is not None and again.summary["totals"]["stored"] == 0
    monkeypatch.chdir(tmp_path)
    for spelling in (f"{store}/", f"file://{store}", "store", "./link/", str(store / ".." / "store")):
        check_index(index_url, open_store(spelling))
    assert assert_store_and_index_agree(str(store), index_url) == {"records": 6, "aliases": 0}


def test_a_crawl_with_dedup_off_into_another_store_stores_nothing_and_says_so(
        site: tuple[Path, ReplayServer], tmp_path: Path) -> None:
    """Without DEDUP_ENABLED the crawl does not check the index before it starts, but every commit still
    goes through it: the first commit refuses, nothing is stored, and the run does not exit 0."""
    registry, server = site
    index_url = f"sqlite:///{tmp_path}/index.sqlite"
    index = Index(index_url)
    index.bind_store(LocalStore(tmp_path / "a"))
    index.engine.dispose()
    result = crawl(registry, str(tmp_path / "b"), index_url, server.url, extra=["DEDUP_ENABLED=false"])
    assert result.returncode != ExitCode.OK, result.stderr[-3000:]
    assert "StoreMismatch" in result.stderr and f"belongs to store {tmp_path / 'a'}" in result.stderr
    assert [f for f in files(tmp_path / "b") if not f.startswith("runs/")] == []
    assert index_state(index_url) == (str(tmp_path / "a"), {"articles": 0, "aliases": 0, "stories": 0, "urls": 0})


def test_s3_stores_are_told_apart_by_bucket_prefix_and_endpoint(
        site: tuple[Path, ReplayServer], bucket: str, moto_server: str, tmp_path: Path) -> None:
    registry, server = site
    index_url = f"sqlite:///{tmp_path}/index.sqlite"
    first = crawl(registry, f"s3://{bucket}/news", index_url, server.url)
    assert first.returncode == 0 and first.summary is not None, first.stderr[-3000:]
    assert first.summary["totals"]["stored"] == 6
    assert index_state(index_url)[0] == f"s3://{bucket}/news at {moto_server}"

    same = crawl(registry, f"s3://{bucket}/news/", index_url, server.url,
                 env={"AWS_ENDPOINT_URL": moto_server + "/"})
    assert same.returncode == 0 and same.summary is not None, same.stderr[-3000:]
    assert same.summary["totals"]["stored"] == 0

    other_prefix = crawl(registry, f"s3://{bucket}/other", index_url, server.url)
    assert other_prefix.returncode == ExitCode.USAGE
    assert_refused(other_prefix.stderr, index_url, f"s3://{bucket}/news at {moto_server}",
                   f"s3://{bucket}/other at {moto_server}")
    # the same bucket name at another endpoint (here the same server by another name) is another store;
    # its credentials are no part of the identity and never printed
    port = moto_server.rsplit(":", 1)[1]
    elsewhere = crawl(registry, f"s3://{bucket}/news", index_url, server.url,
                      env={"AWS_ENDPOINT_URL_S3": f"http://localhost:{port}"})
    assert elsewhere.returncode == ExitCode.USAGE
    assert_refused(elsewhere.stderr, index_url, f"s3://{bucket}/news at {moto_server}",
                   f"s3://{bucket}/news at http://localhost:{port}")
    assert index_state(index_url)[0] == f"s3://{bucket}/news at {moto_server}"


def test_store_identities(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert LocalStore(Path("data/store")).identity == str(tmp_path / "data" / "store")
    assert LocalStore(tmp_path / "data" / "." / "store").identity == str(tmp_path / "data" / "store")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    assert S3Store("s3://news/p/").identity == "s3://news/p" == S3Store("s3://news//p").identity
    assert S3Store("s3://news").identity == "s3://news"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "HTTPS://minio:pa/ss@word@MinIO.Example:443/")
    assert S3Store("s3://news/p").identity == "s3://news/p at https://minio.example"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://[::1]:9000")  # the service-specific one first, as boto3
    assert S3Store("s3://news/p").identity == "s3://news/p at http://[::1]:9000"


def test_an_index_from_before_the_binding_adopts_the_store_of_its_first_run(index_url: str, tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    import steppewatch.index as index_module

    plain = index_url.replace(f":{SECRET}", "")
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(index_module.__file__).parent / "migrations"))
    engine = sa.create_engine(plain, poolclass=sa.pool.NullPool)

    def migrate(step: object, target: str) -> None:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            step(cfg, target)  # type: ignore[operator]

    migrate(command.upgrade, "0012")  # an index as the previous release left it
    assert "store_binding" not in sa.inspect(engine).get_table_names()
    index = Index(index_url)  # upgrades on open; bound to nothing yet
    assert index.bound_store() is None
    index.bind_store(LocalStore(tmp_path / "first"))
    index.bind_store(LocalStore(tmp_path / "first"))
    with pytest.raises(StoreMismatch, match="belongs to store") as refused:
        index.bind_store(LocalStore(tmp_path / "second"))
    assert SECRET not in str(refused.value)
    assert index.bound_store() == str(tmp_path / "first")
    index.engine.dispose()
    migrate(command.downgrade, "0012")
    assert "store_binding" not in sa.inspect(engine).get_table_names()
    migrate(command.upgrade, "head")
    assert {c["name"] for c in sa.inspect(engine).get_columns("store_binding")} == {"id", "store", "bound_at"}
    engine.dispose()


def test_reindex_into_another_store_leaves_the_old_stores_pending_writes_undone(tmp_path: Path) -> None:
    """A crash left a delete for the old store: rebound to a copy of it, that delete is not done there."""
    from steppewatch.archive import Archive

    old, new = LocalStore(tmp_path / "old"), LocalStore(tmp_path / "new")
    index = Index(f"sqlite:///{tmp_path}/index.sqlite")
    index.bind_store(old)
    key = "raw/site=x/date=2024-12-02/0123456789abcdef.html.gz"
    new.put(key, b"kept", "text/html")
    with index.writing() as conn:
        index.queue_writes(conn, [{"action": "delete", "key": key}])
    Archive(index, new, on_merge=[]).rebuild()
    assert new.exists(key) and not index.has_pending()
    assert index.bound_store() == new.identity
    index.engine.dispose()
