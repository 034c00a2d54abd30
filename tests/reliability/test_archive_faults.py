"""What is stored survives bad objects and a rebuild: a corrupted record or a missing raw page
is named and skipped by every command that reads many records; ``reindex`` swaps the whole
index at once (a failure half-way leaves the old one) and keeps what a crawl stores beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from steppewatch.archive import Archive
from steppewatch.index import Index
from steppewatch.layout import article_key
from steppewatch.records import RecordReader
from steppewatch.store import LocalStore
from tests.test_crawl_fixtures import FIXTURES, ROOT, crawl
from tests.test_index import make, seed_text


@pytest.fixture(scope="module")
def server():
    from steppewatch.replay import ReplayServer

    with ReplayServer(FIXTURES / "sites") as srv:
        yield srv


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steppewatch.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "STEPPEWATCH_SITES": str(FIXTURES / "sites.yaml"), **env},
                          cwd=ROOT, timeout=600)


def test_a_corrupted_record_and_a_missing_raw_page_are_named_and_every_command_carries_on(
        server, tmp_path: Path) -> None:
    index_url = f"sqlite:///{tmp_path}/index.sqlite"
    store = tmp_path / "store"
    run = crawl(server, store, index=index_url)
    keys = sorted(store.glob("articles/site=*/date=*/*.json"))
    stored = len(run.records())
    assert len(keys) == stored >= 6
    truncated, no_raw = keys[0], keys[-1]
    truncated.write_bytes(truncated.read_bytes()[:40])  # a full disk, a sync tool cut short
    raw = json.loads(no_raw.read_text("utf-8"))
    day = no_raw.parent.name.removeprefix("date=")
    (store / "raw" / no_raw.parent.parent.name / no_raw.parent.name / f"{raw['id']}.html.gz").unlink()
    bad_key = str(truncated.relative_to(store))
    env = {"STEPPEWATCH_STORE": str(store), "STEPPEWATCH_INDEX_URL": index_url}

    out = cli("reindex", env=env)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert f"skipped unreadable record {bad_key}: not JSON" in out.stderr
    counts = json.loads(out.stdout)
    assert counts["records"] == stored - 1 and counts["skipped_unreadable"] == 1, out.stderr

    out = cli("reprocess", "--since", "2024-11-01", "--until", "2025-01-01", env=env)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert bad_key in out.stderr and "raw page missing" in out.stderr
    counts = json.loads(out.stdout)
    assert counts["missing_raw"] == 1 and counts["skipped_unreadable"] == 2
    assert counts["unchanged"] == stored - 2

    bad_day = truncated.parent.name.removeprefix("date=")
    out = cli("export", "--date", bad_day, env=env)
    assert out.returncode == 0 and bad_key in out.stderr, out.stderr[-2000:]
    assert out.stdout.strip(), "the day's other records are exported"

    out = cli("alerts", "match", "--since", "2024-11-01", "--until", "2025-01-01", env=env)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert bad_key in out.stderr
    assert json.loads(out.stdout)["skipped_unreadable"] >= 1
    assert day  # the record without its raw page is still matched: only its page is gone


def test_reindex_swaps_at_once_and_keeps_what_a_crawl_stored_beside_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    url = f"sqlite:///{tmp_path}/index.sqlite"
    index = Index(url)
    for n in range(4):
        Archive(index, store).commit(make(f"https://steppe-times.test/news/{n}", seed_text(n)), b"<html></html>")
    before = index.counts()

    # a failure half-way through the rebuild (the process killed, the disk full…): the old index stays
    calls = {"n": 0}
    restore = Index.restore

    def failing(self: Index, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        restore(self, *args, **kwargs)

    Index.restore = failing  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError):
            Archive(Index(url), store).rebuild()
    finally:
        Index.restore = restore  # type: ignore[method-assign]
    assert Index(url).counts() == before, "a failed rebuild leaves the index as it was"

    # a crawl storing an article after the rebuild listed the store: the swap still holds it
    class Listing(LocalStore):
        lists = 0

        def list(self, prefix: str = "") -> list[str]:
            keys = super().list(prefix)
            Listing.lists += 1
            if Listing.lists == 2:  # the first listing of aliases/: every record was listed by now
                Archive(Index(url), store).commit(make("https://steppe-times.test/news/5", seed_text(4)), b"<html></html>")
            return keys

    reader = RecordReader(store)
    counts = Archive(Index(url), Listing(tmp_path / "store")).rebuild(reader)
    assert counts["records"] == 5 and not reader.skipped
    assert Index(url).counts()["articles"] == before["articles"] + 1


def test_local_put_and_delete_are_durable_before_they_return(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index commits right after ``put``: the file's bytes, the new directories' entries and
    the rename must all be on disk by then (docs/RELIABILITY.md, "power loss after a commit")."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = LocalStore(tmp_path / "store")
    key = article_key("kz_site", "2024-12-03", "0123456789abcdef")
    store.put(key, b"{}", "application/json")
    leaf = tmp_path / "store" / key
    # every directory this put created, in its parent; then the temporary file (renamed
    # afterwards); then the directory holding the new name
    files = [p for p in synced if Path(p).name.startswith(".tmp-")]
    assert len(files) == 1 and Path(files[0]).parent == leaf.parent
    where = synced.index(files[0])
    assert {Path(p) for p in synced[:where]} == {tmp_path, tmp_path / "store", tmp_path / "store" / "articles",
                                                tmp_path / "store" / "articles" / "site=kz_site"}
    assert synced[where + 1:] == [str(leaf.parent)]
    assert store.get(key) == b"{}"

    synced.clear()
    store.put(key, b"[]", "application/json")  # nothing new to create: the file and its directory
    assert Path(synced[0]).parent == leaf.parent and synced[1:] == [str(leaf.parent)]
    synced.clear()
    store.delete(key)
    assert synced == [str(leaf.parent)] and not store.exists(key)
    store.delete(key)  # already gone: nothing to sync, no error
    assert synced == [str(leaf.parent)]


def test_a_site_id_longer_than_the_index_holds_is_refused_at_load(tmp_path: Path) -> None:
    import yaml

    from steppewatch.registry import RegistryError, load_registry

    sites = yaml.safe_load((FIXTURES / "sites.yaml").read_text("utf-8"))
    sites["sites"][0]["id"] = "k" * 65  # fits SQLite, not PostgreSQL's VARCHAR(64): every commit failed there
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(sites, allow_unicode=True), "utf-8")
    with pytest.raises(RegistryError, match=r"field id: .*at most 64 characters"):
        load_registry(path)
    out = cli("crawl", "--all", "--since", "2024-12-01", "--until", "2024-12-02",
              env={"STEPPEWATCH_SITES": str(path), "STEPPEWATCH_STORE": str(tmp_path / "store")})
    assert out.returncode == 2 and "at most 64 characters" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "store").exists(), "nothing is fetched or stored"


def test_index_deleted_mid_crawl_fails_loudly_and_reindex_sends_no_alert_twice(tmp_path: Path) -> None:
    """Which alerts went out is recorded in the store as well (``delivered/`` markers): losing the
    index and rebuilding it from the store never sends an alert a second time."""
    from steppewatch.replay import ReplayServer
    from tests.reliability.helpers import SiteSpec, crawl, write_registry, write_site

    sites_root = tmp_path / "sites"
    entry = write_site(sites_root, SiteSpec("grain.test", "grain_news", articles=6))
    registry = write_registry(tmp_path / "sites.yaml", [entry])
    (tmp_path / "alerts.yaml").write_text(
        "rules:\n  - name: Grain\n    query: grain\n    recipients: [desk@example.org]\n    mode: immediate\n", "utf-8")
    db = tmp_path / "index.sqlite"
    index_url, store, outbox = f"sqlite:///{db}", tmp_path / "store", tmp_path / "outbox"
    env = {"STEPPEWATCH_SITES": str(registry), "STEPPEWATCH_STORE": str(store), "STEPPEWATCH_INDEX_URL": index_url,
           "STEPPEWATCH_ALERTS": str(tmp_path / "alerts.yaml"), "STEPPEWATCH_OUTBOX_DIR": str(outbox)}
    env.pop("STEPPEWATCH_SMTP_URL", None)
    os.environ.pop("STEPPEWATCH_SMTP_URL", None)

    def drop_index(host: str, target: str) -> None:
        if target == "/news/3/":  # answered only after this returns: its commit meets no index file
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)

    with ReplayServer(sites_root, on_request=drop_index) as server:
        run = crawl(registry, str(store), index_url, server.url, extra=["CONCURRENT_REQUESTS=1"])
    assert run.returncode == 3, run.stderr[-2000:]
    assert "was deleted or replaced" in run.stderr and "Traceback" not in run.stderr
    assert "run the same window again" in run.stderr

    # the documented recovery: rebuild the index from the store, run the window again, alert
    assert cli("reindex", env=env).returncode == 0
    with ReplayServer(sites_root) as server:
        again = crawl(registry, str(store), index_url, server.url)
    assert again.returncode == 0, again.stderr[-2000:]
    window = ("--since", "2024-12-01", "--until", "2024-12-08")
    assert cli("alerts", "match", *window, env=env).returncode == 0
    sent = cli("alerts", "send", env=env)
    assert sent.returncode == 0, sent.stderr[-2000:]
    messages = sorted(outbox.glob("*.eml"))
    stories = len(set(Index(index_url).stories().values()))
    assert messages and len(messages) == stories, "one message per story"
    assert len(list(store.glob("delivered/rule=*/*.json"))) == stories

    # the index lost after sending: reindex, match and send again send nothing
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    out = cli("reindex", env=env)
    assert out.returncode == 0 and json.loads(out.stdout)["alerts_marked_sent"] == stories, out.stdout
    assert cli("alerts", "match", *window, env=env).returncode == 0
    assert cli("alerts", "send", env=env).returncode == 0
    assert sorted(outbox.glob("*.eml")) == messages, "nothing sent twice"

    # and without reindex (a new empty index beside the same store): the markers still hold
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with ReplayServer(sites_root) as server:
        crawl(registry, str(store), index_url, server.url)
    assert cli("alerts", "match", *window, env=env).returncode == 0
    resent = cli("alerts", "send", env=env)
    assert sorted(outbox.glob("*.eml")) == messages, "nothing sent twice"
    assert json.loads(resent.stdout).get("immediate_already_delivered") == stories
