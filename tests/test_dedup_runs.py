"""Storage and dedup across runs, sites and processes, end to end through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from steppewatch.index import Index
from tests.test_crawl_fixtures import FIXTURES, GOLDEN, ROOT, Run, crawl

STORY = {a["url"]: a.get("story") for g in GOLDEN.values() for a in g["articles"]}


@pytest.fixture(scope="module")
def server():
    from steppewatch.replay import ReplayServer

    with ReplayServer(FIXTURES / "sites") as srv:
        yield srv


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "steppewatch.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, STEPPEWATCH_SITES=str(FIXTURES / "sites.yaml"), **env),
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def snapshot(store: Path) -> dict[str, int]:
    return {str(p.relative_to(store)): p.stat().st_mtime_ns for p in store.rglob("*")
            if p.is_file() and not str(p.relative_to(store)).startswith("runs/")}


def stories(run: Run) -> dict[str, str]:
    return {r["canonical_url"]: r["story_id"] for r in run.records() + run.aliases()}


def test_second_run_fetches_no_stored_article_and_writes_nothing(server, tmp_path: Path) -> None:
    first = crawl(server, tmp_path / "store")
    before = snapshot(tmp_path / "store")
    stored_paths = {r["url"].split(".test", 1)[1] for r in first.records() + first.aliases()}
    second = crawl(server, tmp_path / "store")
    assert snapshot(tmp_path / "store") == before, "no object written or rewritten"
    fetched = {h.path for h in second.hits}
    assert not (fetched & stored_paths), sorted(fetched & stored_paths)
    assert second.summary["totals"]["keys_written"] == 0 and second.summary["totals"]["stored"] == 0
    skipped = sum(s["skipped"].get("already_stored", 0) for s in second.summary["sites"].values())
    assert skipped >= len(stored_paths)
    manifest = json.loads((tmp_path / "store" / second.summary["manifest"]).read_text())
    assert manifest["keys_written"] == [] and manifest["since"].startswith("2024-12-01")
    first_manifest = json.loads((tmp_path / "store" / first.summary["manifest"]).read_text())
    assert len(first_manifest["keys_written"]) == len(before)


def test_story_groups(server, tmp_path: Path) -> None:
    run = crawl(server, tmp_path / "store")
    story_of = stories(run)
    labelled: dict[str, set[str]] = {}
    for url, label in STORY.items():
        if label:
            labelled.setdefault(label, set()).add(url)
    records = {r["canonical_url"]: r for r in run.records() + run.aliases()}

    def same(label: str, language: str) -> set[str]:
        return {story_of[u] for u in labelled[label] if records[u]["language"] == language}

    assert len(same("syndicated-tets", "ru")) == 1   # syndicated: one record, one alias, one story
    assert len(run.aliases()) == 1 and run.aliases()[0]["alias_of"] in {r["id"] for r in run.records()}
    assert len(same("putin-visit-preview", "en")) == 1  # the machine-spun copy and its original
    assert len(same("dubnov-summit", "en")) == 1        # a light rewrite and a report of the same view
    assert len(same("syria-astana-talks", "ru")) == 1
    # different stories that both mention Astana stay apart
    astana_other = [u for u, r in records.items() if "light-rail" in u or "financial-hub" in u]
    assert len(astana_other) == 2
    groups = {story_of[u] for u in astana_other} | same("dubnov-summit", "en") | same("putin-visit-preview", "en")
    assert len(groups) == 4


def test_reindex_reproduces_records_and_story_groups(server, tmp_path: Path) -> None:
    index_url = f"sqlite:///{tmp_path}/index.sqlite"
    run = crawl(server, tmp_path / "store", index=index_url)
    before_groups = Index(index_url).stories()
    before_counts = Index(index_url).counts()
    before_store = snapshot(tmp_path / "store")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path}/index.sqlite{suffix}").unlink(missing_ok=True)
    Index._migrated.discard(index_url)
    out = cli("reindex", env={"STEPPEWATCH_STORE": str(tmp_path / "store"), "STEPPEWATCH_INDEX_URL": index_url})
    assert json.loads(out.stdout)["records"] == len(run.records())
    rebuilt = Index(index_url)
    assert rebuilt.stories() == before_groups
    assert rebuilt.counts() == before_counts
    assert snapshot(tmp_path / "store") == before_store
    # and the rebuilt index still knows every stored URL: a new run fetches none of them
    again = crawl(server, tmp_path / "store", index=index_url)
    assert again.summary["totals"]["stored"] == 0 and again.summary["totals"]["keys_written"] == 0


def test_reprocess_rewrites_only_changed_records_without_fetching(server, tmp_path: Path) -> None:
    index_url = f"sqlite:///{tmp_path}/index.sqlite"
    run = crawl(server, tmp_path / "store", index=index_url)
    victim = next(r for r in run.records() if r["site"] == "steppe_times")
    key = next(p for p in (tmp_path / "store").rglob(f"articles/**/{victim['id']}.json"))
    stale = dict(victim, text=victim["text"] + "\nLatest news\nKcell Receives Certification for Information Security",
                 content_hash="0" * 64)
    key.write_text(json.dumps(stale, ensure_ascii=False))  # as an older extractor would have left it
    env = {"STEPPEWATCH_STORE": str(tmp_path / "store"), "STEPPEWATCH_INDEX_URL": index_url}
    cli("reindex", env=env)  # the index follows the store
    before = snapshot(tmp_path / "store")
    hits_before = len(server.hits)
    out = cli("reprocess", "--since", "2024-12-01", "--until", "2024-12-08", env=env)
    counts = json.loads(out.stdout)
    assert counts["updated"] == 1 and counts["unchanged"] == len(run.records()) - 1
    assert len(server.hits) == hits_before, "reprocess fetches nothing"
    record = json.loads(key.read_text())
    assert record["text"] == victim["text"] and record["version"] == 2 and record["updated"]
    changed = {k for k, v in snapshot(tmp_path / "store").items() if before.get(k) != v}
    assert changed and all(victim["id"] in k for k in changed)


def test_export_parquet_read_by_duckdb(server, tmp_path: Path) -> None:
    import duckdb

    run = crawl(server, tmp_path / "store")
    env = {"STEPPEWATCH_STORE": str(tmp_path / "store")}
    days = sorted({p.parent.name.removeprefix("date=") for p in (tmp_path / "store").glob("articles/*/*/*.json")})
    for day in days:
        cli("export", "--date", day, env=env)
    files = sorted((tmp_path / "store" / "datasets" / "articles").glob("site=*/date=*/part-0.parquet"))
    assert files
    rows = duckdb.sql(
        f"select site, cast(date as varchar) d, count(*) n, count(distinct story_id) s "
        f"from read_parquet('{tmp_path}/store/datasets/articles/*/*/*.parquet', hive_partitioning=true) "
        f"group by all order by all").fetchall()
    assert sum(r[2] for r in rows) == len(run.records())
    assert {r[0] for r in rows} == {r["site"] for r in run.records()}
    one = duckdb.sql(f"select title, published, authors from read_parquet('{files[0]}') limit 1").fetchall()[0]
    assert one[0] and one[1] is not None


def test_demo_on_s3_stores_the_same_keys_and_then_nothing(bucket: str, moto_server: str, tmp_path: Path) -> None:
    local = tmp_path / "local"
    cli("demo", env={"STEPPEWATCH_STORE": str(local), "STEPPEWATCH_INDEX_URL": f"sqlite:///{tmp_path}/l.sqlite"})
    s3_env = {"STEPPEWATCH_STORE": f"s3://{bucket}/demo", "STEPPEWATCH_INDEX_URL": f"sqlite:///{tmp_path}/s.sqlite"}
    cli("demo", env=s3_env)
    client = boto3.client("s3", endpoint_url=moto_server)

    def s3_objects() -> dict[str, str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="demo/")
        return {o["Key"][5:]: o["ETag"] for p in pages for o in p.get("Contents", []) if "/runs/" not in "/" + o["Key"]}

    first = s3_objects()
    assert sorted(first) == sorted(snapshot(local)) and len(first) > 40
    head = client.head_object(Bucket=bucket, Key="demo/" + next(k for k in first if k.startswith("raw/")))
    assert head["ContentEncoding"] == "gzip" and head["Metadata"]["site"]
    out = cli("demo", "--json", env=s3_env)
    assert s3_objects() == first
    assert json.loads(out.stdout)["totals"]["keys_written"] == 0
    import pyarrow.dataset as pads
    from pyarrow import fs

    cli("export", "--date", "2024-12-03", env=s3_env)
    s3fs = fs.S3FileSystem(endpoint_override=moto_server, access_key="testing", secret_key="testing-secret-key",
                           region="us-east-1", scheme="http")
    dataset = pads.dataset(f"{bucket}/demo/datasets/articles", filesystem=s3fs, format="parquet",
                           partitioning="hive")
    import duckdb

    count = duckdb.sql("select count(*) from dataset where date = '2024-12-03'").fetchall()[0][0]
    assert dataset.count_rows() == count
    assert count == len([k for k in first if k.startswith("articles/") and "date=2024-12-03" in k])


def test_two_crawl_processes_store_what_one_does(server, tmp_path: Path) -> None:
    """``crawl --processes 2`` splits the articles between two processes: one run, one manifest,
    the same records as one process (bar fetch provenance: when, by which run, through which
    listing), no article fetched twice."""
    volatile = {"fetched_at", "run_id", "source"}

    def stored(run: Run) -> dict[str, dict]:
        return {f"{r['site']}/{r['id']}": {k: v for k, v in r.items() if k not in volatile}
                for r in run.records() + run.aliases()}

    one = crawl(server, tmp_path / "one")
    two = crawl(server, tmp_path / "two", flags=["--processes", "2"])
    assert stored(two) == stored(one) and len(stored(one)) >= 20
    assert two.summary["processes"] == 2 and two.summary["shards"] == ["0/2", "1/2"]
    # the processes hand their results to the run: one manifest, none of their own
    assert [p.name for p in (tmp_path / "two" / "runs").glob("*.json")] == [two.summary["manifest"].split("/")[-1]]
    # (how many were "stored" rather than "alias" depends on which copy a process met first;
    # what ends up in the store does not)
    manifest = json.loads((tmp_path / "two" / two.summary["manifest"]).read_text())
    first = json.loads((tmp_path / "one" / one.summary["manifest"]).read_text())
    assert sorted(manifest["keys_written"]) == sorted(first["keys_written"])
    article_pages = {(r["url"].split("/")[2], "/" + r["url"].split("/", 3)[3]) for r in one.records() + one.aliases()}
    fetched = [(h.host, h.path) for h in two.hits if (h.host, h.path) in article_pages]
    assert len(fetched) == len(set(fetched)) == len(article_pages), "each article fetched once, by one process"
