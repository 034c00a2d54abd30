"""The dedup index on SQLite and PostgreSQL: outcomes, versions, aliases, stories, fetch policy."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from steppewatch.archive import Archive, Outcome
from steppewatch.index import FetchPolicy, Index
from steppewatch.models import Article, article_id, content_hash
from steppewatch.store import LocalStore

SEEDS = Path(__file__).resolve().parent / "fixtures" / "seeds"


def seed_text(n: int) -> str:
    text = next(SEEDS.glob(f"{n:03d}_*.txt")).read_text("utf-8")
    return "\n".join(ln for ln in text.splitlines()[1:] if ln.strip() and not ln.startswith("- "))


def make(url: str, text: str, site: str = "steppe_times", published: str = "2024-12-03T10:00:00+05:00",
         language: str = "en") -> Article:
    return Article(id=article_id(url), url=url, canonical_url=url, site=site, title=url.rsplit("/", 1)[-1],
                   text=text, published=published, date_source="page", language=language,
                   fetched_at=datetime.now(UTC).isoformat(), http_status=200, content_hash=content_hash(text),
                   extractor={"name": "trafilatura"})


@pytest.fixture(params=["sqlite", "postgresql"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Index:
    if request.param == "sqlite":
        return Index(f"sqlite:///{tmp_path}/index.sqlite")
    return Index(request.getfixturevalue("pg_index_url"))


def test_store_once_then_unchanged(index: Index, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    a = make("http://steppe-times.test/a/", seed_text(0))
    first = Archive(index, store).commit(a, b"<html>a</html>")
    assert first.outcome == Outcome.STORED and first.story_id == a.id
    listing = {k: (tmp_path / "s" / k).stat().st_mtime_ns for k in store.list()}
    assert len(listing) == 2
    again = Archive(index, store).commit(replace(a, fetched_at=datetime.now(UTC).isoformat()), b"<html>a</html>")
    assert again.outcome == Outcome.UNCHANGED and again.keys == ()
    assert {k: (tmp_path / "s" / k).stat().st_mtime_ns for k in store.list()} == listing
    record = json.loads(store.get(first.keys[1]))
    assert record["story_id"] == a.id and record["version"] == 1 and record["updated"] is False


def test_same_text_elsewhere_is_an_alias(index: Index, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    a = make("http://kazinfo.test/ru/x", seed_text(1), site="kazinfo")
    b = make("http://dala-news.test/ru/news/x/", seed_text(1).replace("\n", "\n\n"), site="dala_news")
    assert a.content_hash == b.content_hash  # normalised text is the same
    Archive(index, store).commit(a, b"a")
    result = Archive(index, store).commit(b, b"b")
    assert result.outcome == Outcome.ALIAS and result.alias_of == a.id and result.story_id == a.id
    alias = json.loads(store.get(result.keys[0]))
    assert alias["alias_of"] == a.id and "text" not in alias
    assert not store.list("articles/site=dala_news/") and not store.list("raw/site=dala_news/")
    assert index.counts() == {"articles": 1, "aliases": 1, "stories": 1, "urls": 2}
    assert not index.should_fetch("http://dala-news.test/ru/news/x/")


def test_the_earlier_publication_holds_the_record_whatever_the_order(index: Index, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    later = make("http://dala-news.test/ru/news/x/", seed_text(1), site="dala_news", published="2024-12-05T10:00:00Z")
    earlier = make("http://kazinfo.test/ru/x", seed_text(1), site="kazinfo", published="2024-12-04T09:00:00Z")
    assert Archive(index, store).commit(later, b"later").outcome == Outcome.STORED
    result = Archive(index, store).commit(earlier, b"earlier")
    assert result.outcome == Outcome.STORED and result.deleted
    assert [k.split("/")[1] for k in store.list("articles/")] == ["site=kazinfo"]
    assert [k.split("/")[1] for k in store.list("aliases/")] == ["site=dala_news"]
    assert not store.list("raw/site=dala_news/")
    alias = json.loads(store.get(store.list("aliases/")[0]))
    assert alias["alias_of"] == earlier.id and alias["story_id"] == result.story_id
    assert index.counts()["articles"] == 1 and index.counts()["aliases"] == 1
    third = make("http://steppe-times.test/ru/x", seed_text(1), site="steppe_times", published="2024-12-06T00:00:00Z")
    assert Archive(index, store).commit(third, b"third").alias_of == earlier.id


def test_changed_text_becomes_a_new_version(index: Index, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    a = make("http://steppe-times.test/a/", seed_text(0))
    first = Archive(index, store).commit(a, b"<html>v1</html>")
    edited_text = seed_text(0) + "\nUpdate: the Kremlin declined to comment."
    edited = replace(a, text=edited_text, content_hash=content_hash(edited_text))
    result = Archive(index, store).commit(edited, b"<html>v2</html>")
    assert result.outcome == Outcome.UPDATED
    record = json.loads(store.get(first.keys[1]))
    assert record["version"] == 2 and record["updated"] is True and "declined to comment" in record["text"]
    assert [v["version"] for v in record["versions"]] == [1, 2]
    old = json.loads(store.get(record["versions"][0]["key"]))
    assert "declined" not in old["text"] and old["content_hash"] == a.content_hash
    assert store.exists(record["versions"][0]["raw_key"])


def spin(text: str) -> str:
    swaps = {"visit": "go to", "meeting": "assembly", "believes": "thinks", "relations": "ties",
             "important": "essential", "country": "nation", "capital": "metropolis"}
    for word, other in swaps.items():
        text = re.sub(rf"\b{word}\b", other, text)
    paragraphs = text.splitlines()
    return "[ad_1]\n" + "\n".join(paragraphs[:-1]) + "\nSource link"


def test_near_duplicates_share_a_story_and_other_stories_do_not(index: Index, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    original = make("http://steppe-times.test/dubnov/", seed_text(0))
    spun = make("http://silkroad-review.test/dubnov-copy/", spin(seed_text(0)), site="silkroad_review",
                published="2024-12-04T08:00:00Z")
    other = make("http://steppe-times.test/korybko/", seed_text(1), published="2024-12-03T12:00:00+05:00")
    far = make("http://silkroad-review.test/dubnov-much-later/", spin(seed_text(0)) + "\nMonths later.",
               site="silkroad_review", published="2025-03-01T08:00:00Z")
    s1 = Archive(index, store).commit(original, b"1").story_id
    assert Archive(index, store).commit(spun, b"2").story_id == s1
    assert Archive(index, store).commit(other, b"3").story_id == other.id != s1
    assert Archive(index, store).commit(far, b"4").story_id == far.id  # a week either side, not months


def test_fetch_policy(tmp_path: Path) -> None:
    index = Index(f"sqlite:///{tmp_path}/i.sqlite", FetchPolicy(timedelta(hours=48), timedelta(hours=6), 1))
    store = LocalStore(tmp_path / "s")
    now = datetime.now(UTC)
    old = make("http://steppe-times.test/old/", seed_text(0))
    fresh = make("http://steppe-times.test/fresh/", seed_text(1), published=(now - timedelta(hours=1)).isoformat())
    Archive(index, store).commit(old, b"x", extra_urls=["http://steppe-times.test/old-redirect/"])
    Archive(index, store).commit(fresh, b"y")
    assert index.should_fetch("http://steppe-times.test/new/")
    assert not index.should_fetch(old.url) and not index.should_fetch("http://steppe-times.test/old-redirect/")
    assert index.should_fetch(old.url, reprocess=True)
    assert not index.should_fetch(fresh.url, now=now)  # just checked
    later = now + timedelta(hours=7)
    assert index.should_fetch(fresh.url, now=later)  # recent, rested: re-check once for edits
    Archive(index, store).commit(fresh, b"y")  # the re-check found the same text
    assert not index.should_fetch(fresh.url, now=later + timedelta(hours=7))
    assert not index.should_fetch(fresh.url, now=now + timedelta(hours=60))


def test_story_id_is_the_earliest_publication_whatever_the_order(index: Index, tmp_path: Path) -> None:
    """Found late, an earlier publication gives the story its id; records and alert rows follow."""
    import sqlalchemy as sa

    from steppewatch.alerts.outbox import alert_outbox

    store = LocalStore(tmp_path / "s")
    original = make("http://steppe-times.test/dubnov/", seed_text(0), published="2024-12-03T08:00:00Z")
    spun = make("http://silkroad-review.test/dubnov-copy/", spin(seed_text(0)), site="silkroad_review",
                published="2024-12-04T08:00:00Z")
    first = Archive(index, store).commit(spun, b"2")
    assert first.story_id == spun.id
    with index.engine.begin() as conn:  # the story already alerted a rule under its first id
        conn.execute(alert_outbox.insert().values(rule="r", story_id=spun.id, article_id=spun.id, mode="immediate",
                                                  status="sent", matched_at=datetime.now(UTC)))
    second = Archive(index, store).commit(original, b"1")
    assert second.outcome == Outcome.STORED and second.story_id == original.id
    assert index.stories() == {spun.id: original.id, original.id: original.id}
    records = {json.loads(p.read_text())["id"]: json.loads(p.read_text()) for p in (tmp_path / "s").rglob("*.json")}
    assert {r["story_id"] for r in records.values()} == {original.id}
    assert any(k.startswith("articles/site=silkroad_review/") for k in second.keys), "the moved record is rewritten"
    with index.engine.connect() as conn:
        rows = conn.execute(sa.select(alert_outbox.c.rule, alert_outbox.c.story_id)).all()
    assert [tuple(r) for r in rows] == [("r", original.id)], "the alert row follows, so the story is not re-alerted"


def test_band_key_migration_keeps_every_row_both_ways(index: Index, tmp_path: Path) -> None:
    """0006 re-keys the LSH bands by day; down to 0005 and up again, nothing is lost."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config as AlembicConfig

    import steppewatch.index as index_module
    from steppewatch import dedup

    store = LocalStore(tmp_path / "s")
    original = make("http://steppe-times.test/dubnov/", seed_text(0))
    Archive(index, store).commit(original, b"1")
    Archive(index, store).commit(make("http://steppe-times.test/korybko/", seed_text(1)), b"2")
    changed = make(original.url, seed_text(0) + "\nUpdated: the talks resume on Monday.")
    Archive(index, store).commit(changed, b"3")  # a new version: its old band rows are deleted by key, day included

    def band_rows() -> list[tuple]:
        with index.engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(sa.text("SELECT band, hash, day, article_id FROM bands")))

    def key_columns() -> list[str]:
        return sa.inspect(index.engine).get_pk_constraint("bands")["constrained_columns"]

    before = band_rows()
    assert len(before) == 2 * dedup.BANDS
    assert key_columns() == ["band", "hash", "day", "article_id"]
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(index_module.__file__).parent / "migrations"))
    for target, key in (("0005", ["band", "hash", "article_id"]), ("head", ["band", "hash", "day", "article_id"])):
        with index.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if target != "head" else command.upgrade)(cfg, target)
        index.engine.dispose()
        assert key_columns() == key and band_rows() == before
    spun = make("http://silkroad-review.test/dubnov-copy/", spin(seed_text(0)), site="silkroad_review",
                published="2024-12-04T08:00:00Z")
    assert Archive(index, store).commit(spun, b"4").story_id == original.id
