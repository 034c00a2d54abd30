"""Stories through ``Index.commit`` (SQLite): one site's same-topic stories stay apart, a
rewrite by another outlet joins, and rows stored before migration 0010 still match."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from bench.stories_labelled import written_texts
from steppewatch.archive import Archive
from steppewatch.db import shingles
from steppewatch.index import Index
from steppewatch.store import LocalStore
from tests.test_index import make

TEXTS = written_texts()


def article(name: str, language: str, published: str = "2025-01-12T09:00:00+05:00"):  # noqa: ANN201
    text = TEXTS[name]
    return make(f"https://{text['site']}.example/{name}", text["text"], site=text["site"],
                published=published, language=language)


def test_same_site_same_topic_stories_stay_two_and_a_rewrite_joins(tmp_path: Path) -> None:
    index = Index(f"sqlite:///{tmp_path}/index.sqlite")
    store = LocalStore(tmp_path / "s")
    almaty = Archive(index, store).commit(article("quake_almaty_in_vesti", "ru"), b"1")
    kordai = Archive(index, store).commit(article("quake_kordai_in_vesti", "ru", "2025-01-19T21:30:00+05:00"), b"2")
    rates = Archive(index, store).commit(article("tenge_mar6_in_vesti", "ru", "2025-01-14T18:00:00+05:00"), b"3")
    rates_before = Archive(index, store).commit(article("tenge_mar5_in_vesti", "ru", "2025-01-13T18:00:00+05:00"), b"4")
    assert len({almaty.story_id, kordai.story_id, rates.story_id, rates_before.story_id}) == 4
    rewrite = Archive(index, store).commit(article("quake_almaty_rewrite", "ru", "2025-01-12T10:00:00+05:00"), b"5")
    assert rewrite.story_id == almaty.story_id
    brief = Archive(index, store).commit(article("quake_almaty_brief", "ru", "2025-01-12T11:00:00+05:00"), b"6")
    assert brief.story_id == almaty.story_id
    assert index.counts()["stories"] == 4


def test_rows_without_evidence_are_compared_on_words(tmp_path: Path) -> None:
    """A database migrated from before 0010 holds NULL evidence until ``reindex``."""
    index = Index(f"sqlite:///{tmp_path}/index.sqlite")
    store = LocalStore(tmp_path / "s")
    first = Archive(index, store).commit(article("bank_deposits", "en"), b"1")
    with index.engine.begin() as conn:
        conn.execute(sa.update(shingles).values(phrases=None, paragraphs=None, numbers=None))
    copy = Archive(index, store).commit(article("bank_deposits_in_wire", "en"), b"2")
    assert copy.story_id == first.story_id
    counts = Archive(index, store).rebuild()
    assert (counts["records"], counts["aliases"]) == (2, 0)
    with index.engine.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(shingles)
                            .where(shingles.c.phrases.is_(None))).scalar() == 0
    assert index.stories()[copy.article_id] == first.story_id


def test_a_database_from_before_0010_upgrades_and_keeps_matching(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    import steppewatch.index as index_module

    url = f"sqlite:///{tmp_path}/old.sqlite"
    engine = sa.create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(index_module.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
        conn.execute(sa.text("INSERT INTO shingles (article_id, language, day, story_id, data) "
                             "VALUES ('x', 'en', '2025-01-12', 'x', x'')"))
    index = Index(url)
    with index.engine.begin() as conn:
        row = conn.execute(sa.select(shingles).where(shingles.c.article_id == "x")).one()
    assert row.phrases is None and row.paragraphs is None and row.numbers is None
    store = LocalStore(tmp_path / "s")
    first = Archive(index, store).commit(article("saidov_berlin", "en"), b"1")
    rewrite = Archive(index, store).commit(article("saidov_berlin_rewrite", "en"), b"2")
    assert index.stories()[first.article_id] == rewrite.story_id  # the story goes by the smaller id of the two
