"""Two crawls at once on PostgreSQL: nothing stored twice, nothing lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from steppewatch.index import Index
from steppewatch.replay import ReplayServer
from tests.test_crawl_fixtures import FAST, FIXTURES, GOLDEN, ROOT

EXPECTED = sum(len(g["articles"]) for g in GOLDEN.values())


def start(sites: list[str], store: Path, index_url: str, proxy: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "steppewatch.cli", "crawl", *sites, "--since", "2024-12-01T00:00Z",
            "--until", "2024-12-08T00:00Z", "--store", str(store), "--json"]
    for setting in FAST:
        args += ["--set", setting]
    env = dict(os.environ, STEPPEWATCH_SITES=str(FIXTURES / "sites.yaml"), STEPPEWATCH_PROXY=proxy,
               STEPPEWATCH_INDEX_URL=index_url)
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


def objects(store: Path, prefix: str) -> list[str]:
    return sorted(str(p.relative_to(store)) for p in store.glob(f"{prefix}/*/*/*") if p.is_file())


def test_same_sites_twice_at_once(pg_index_url: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with ReplayServer(FIXTURES / "sites") as server:
        procs = [start(["--all"], store, pg_index_url, server.url) for _ in range(2)]
        summaries = [finish(p) for p in procs]
    records, aliases, raws = objects(store, "articles"), objects(store, "aliases"), objects(store, "raw")
    assert len(records) + len(aliases) == EXPECTED
    assert len(aliases) == 1 and len(raws) == len(records)
    counts = Index(pg_index_url).counts()
    assert counts["articles"] == len(records) and counts["aliases"] == len(aliases)
    ids = [json.loads((store / k).read_text())["canonical_url"] for k in records + aliases]
    assert len(ids) == len(set(ids))
    outcomes: dict[str, int] = {}
    for summary in summaries:
        for name, n in summary["totals"]["outcome"].items():
            outcomes[name] = outcomes.get(name, 0) + n
        assert summary["totals"]["errors"].get("http_404", 0) >= 1
        assert not [k for k in summary["totals"]["errors"] if not k.startswith(("http_4", "robots"))]
    # each article was committed once as new (a record or an alias); the other crawl skipped
    # it, found it unchanged, or lost the race on the unique rows and saw a duplicate
    assert outcomes.get("stored", 0) + outcomes.get("alias", 0) == EXPECTED, outcomes


def test_two_sites_with_one_syndicated_story_at_once(pg_index_url: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with ReplayServer(FIXTURES / "sites") as server:
        procs = [start([site], store, pg_index_url, server.url) for site in ("kazinfo", "dala_news")]
        for proc in procs:
            finish(proc)
    records, aliases = objects(store, "articles"), objects(store, "aliases")
    expected = len(GOLDEN["kazinfo"]["articles"]) + len(GOLDEN["dala_news"]["articles"])
    assert len(records) + len(aliases) == expected and len(aliases) == 1
    alias = json.loads((store / aliases[0]).read_text())
    holder = json.loads((store / next(k for k in records if alias["alias_of"] in k)).read_text())
    assert holder["content_hash"] == alias["content_hash"] and holder["site"] != alias["site"]
    assert holder["published"] <= alias["published"] or holder["id"] < alias["id"]
    index = Index(pg_index_url)
    assert index.counts()["articles"] == len(records) and index.stories()[alias["id"]] == holder["story_id"]
