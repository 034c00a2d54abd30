"""The commit protocol interrupted at every step in turn, on SQLite and PostgreSQL.

A sequence of commits goes through every path of ``Archive.commit``: a new record, an
alias (the same text elsewhere), an earlier original taking over, a new version of a
record, and a story joined by an earlier publication. Each commit of the sequence is
interrupted at each of its steps — every object written or deleted and every database
commit — by an exception that nothing catches (a killed process stops there too). Then
the run starts again as a crawl would (the crawl archive repairs first) and stores the
same article again, and the rest of the sequence follows. Store and index must end
exactly as after an uninterrupted run: nothing lost, nothing twice, no ``reindex``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from steppewatch.archive import Archive
from steppewatch.db import articles, contents, pending_writes, shingles, urls
from steppewatch.index import Index
from steppewatch.models import Article, content_hash
from steppewatch.store import LocalStore
from tests.conftest import PG_URL
from tests.test_index import make, seed_text, spin

FETCHED = "2024-12-03T12:00:00+00:00"


class Crash(BaseException):  # noqa: N818 — not an Exception: nothing in the code under test catches it
    """The process stopping at this point."""


class Steps:
    """Counts the protocol's steps; raises ``Crash`` at the chosen one."""

    def __init__(self) -> None:
        self.count = 0
        self.crash_at: int | None = None
        self.seen: list[str] = []

    def step(self, what: str) -> None:
        if self.crash_at is None:
            return
        self.count += 1
        self.seen.append(what)
        if self.count == self.crash_at:
            raise Crash(what)


class CountingStore(LocalStore):
    steps: Steps

    def put(self, key: str, data: bytes, content_type: str, content_encoding: str | None = None,
            metadata: dict[str, str] | None = None) -> None:
        self.steps.step(f"put {key}")
        super().put(key, data, content_type, content_encoding, metadata)

    def delete(self, key: str) -> None:
        self.steps.step(f"delete {key}")
        super().delete(key)


def sequence() -> list[Article]:
    def fixed(article: Article) -> Article:
        return replace(article, fetched_at=FETCHED)

    text = seed_text(0)
    edited = seed_text(1) + "\nThe ministry confirmed the figures on Tuesday evening."
    return [
        fixed(make("http://steppe-times.test/a/", text, published="2024-12-03T10:00:00Z")),  # stored
        fixed(make("http://kazinfo.test/b/", text, site="kazinfo", published="2024-12-03T12:00:00Z")),  # alias
        fixed(make("http://silkroad-review.test/c/", text, site="silkroad_review",
                   published="2024-12-03T08:00:00Z")),  # earlier: takes the record over
        fixed(make("http://steppe-times.test/d/", seed_text(1), published="2024-12-03T09:00:00Z")),  # stored
        fixed(replace(make("http://steppe-times.test/d/", edited, published="2024-12-03T09:00:00Z"),
                      content_hash=content_hash(edited))),  # a new version
        fixed(make("http://kazinfo.test/e/", spin(text), site="kazinfo",
                   published="2024-12-03T06:00:00Z")),  # the story's earliest: joins and renames it
    ]


def state(index: Index, root: Path) -> dict[str, Any]:
    """What must agree: every object's bytes, and the index rows (re-check counters aside)."""
    objects = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
               if p.is_file() and not p.name.startswith(".tmp-")}
    with index.engine.connect() as conn:
        rows = {
            "articles": sorted(tuple(r) for r in conn.execute(sa.select(
                articles.c.id, articles.c.site, articles.c.day, articles.c.story_id, articles.c.alias_of,
                articles.c.key, articles.c.version, articles.c.content_hash))),
            "contents": sorted(tuple(r) for r in conn.execute(sa.select(contents))),
            "urls": sorted(tuple(r) for r in conn.execute(sa.select(urls))),
            "shingles": sorted(tuple(r) for r in conn.execute(sa.select(shingles.c.article_id, shingles.c.story_id))),
            "pending": conn.execute(sa.select(sa.func.count()).select_from(pending_writes)).scalar(),
        }
    return {"objects": objects, "rows": rows}


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp}/index.sqlite"
        return
    name = f"sw_crash_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def run(url: str, root: Path, interrupt: tuple[int, int] | None) -> tuple[dict[str, Any], list[str]]:
    """The sequence, with commit ``interrupt[0]`` stopped at its step ``interrupt[1]``; returns
    the end state and the steps that commit went through."""
    steps = Steps()
    index = Index(url)
    store = CountingStore(root)
    store.steps = steps

    @sa.event.listens_for(index.engine, "commit")
    def _commit(_conn: Any) -> None:
        steps.step("database commit")

    articles_in_order = sequence()
    seen: list[str] = []
    try:
        for n, article in enumerate(articles_in_order):
            if interrupt is not None and n == interrupt[0]:
                steps.crash_at = interrupt[1]
                try:
                    Archive(index, store, on_merge=[]).commit(article, f"<html>{n}</html>".encode())
                except Crash:
                    seen = list(steps.seen)
                    steps.crash_at = None
                    # the run starts again: the crawl repairs first, then stores the article again
                    again = Archive(index, store, on_merge=[])
                    again.repair()
                    again.commit(article, f"<html>{n}</html>".encode())
                else:
                    seen = list(steps.seen)
                steps.crash_at = None
            else:
                Archive(index, store, on_merge=[]).commit(article, f"<html>{n}</html>".encode())
        return state(index, root), seen
    finally:
        sa.event.remove(index.engine, "commit", _commit)
        index.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_commit_interrupted_at_any_step_then_run_again_ends_as_if_never_interrupted(
        backend: str, tmp_path: Path) -> None:
    with database(backend, tmp_path / "clean") as url:
        expected, _ = run(url, tmp_path / "clean" / "store", None)
    assert expected["rows"]["pending"] == 0
    records = [json.loads(v) for k, v in expected["objects"].items() if k.startswith(("articles/", "aliases/"))]
    assert len({r["story_id"] for r in records}) == 2, "the sequence joins one story and keeps another"
    assert any(k.startswith("versions/") for k in expected["objects"]), "the sequence makes a version"
    assert not any(k.startswith("staging/") for k in expected["objects"])

    cases = 0
    for n in range(len(sequence())):
        step = 1
        while True:
            where = tmp_path / f"c{n}-{step}"
            with database(backend, where) as url:
                got, seen = run(url, where / "store", (n, step))
            if len(seen) < step:  # the commit finished before reaching this step: all steps done
                break
            cases += 1
            assert got == expected, f"commit {n} interrupted at step {step} ({seen[-1]}): store or index differ"
            step += 1
    # every commit has at least its database commit; takeovers, versions and merges have more
    assert cases >= 20, cases


class SlowStore(LocalStore):
    """A store that takes its time: two writers of one URL surely overlap."""

    def put(self, key: str, data: bytes, content_type: str, content_encoding: str | None = None,
            metadata: dict[str, str] | None = None) -> None:
        import time

        time.sleep(0.3)
        super().put(key, data, content_type, content_encoding, metadata)


def _store_text(url: str, root: str, text: str, barrier: Any) -> None:
    article = replace(make("http://steppe-times.test/same/", text), content_hash=content_hash(text),
                      fetched_at=FETCHED)
    archive = Archive(Index(url), SlowStore(Path(root)), on_merge=[])
    barrier.wait()
    archive.commit(article, text.encode())


def test_two_processes_storing_one_url_with_different_texts_keep_both(pg_index_url: str, tmp_path: Path) -> None:
    """On PostgreSQL nothing locked an id that did not exist yet: both wrote their objects, one
    insert failed, and the store kept the loser's text while the index had the winner's."""
    import multiprocessing

    Index(pg_index_url).engine.dispose()  # migrated once, before the race
    texts = [seed_text(0), seed_text(1)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_store_text, args=(pg_index_url, str(tmp_path / "store"), t, barrier))
             for t in texts]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    index = Index(pg_index_url)
    with index.engine.connect() as conn:
        (row,) = conn.execute(sa.select(articles)).all()
    assert row.version == 2, "one became the record, the other its version"
    record = json.loads((tmp_path / "store" / row.key).read_text("utf-8"))
    assert record["content_hash"] == row.content_hash, "store and index agree"
    (kept,) = [json.loads(p.read_text("utf-8")) for p in (tmp_path / "store").glob("versions/**/*.json")]
    assert {record["text"], kept["text"]} == set(texts), "both texts are kept"
    assert not [p for p in (tmp_path / "store").glob("staging/**/*") if p.is_file()], "nothing left half-way"
