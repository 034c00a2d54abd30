"""Language editions in the index: an outlet's English, Russian and Kazakh pages of one
article end as one story whatever order they are stored in; pages whose alternates a
broken template points elsewhere (one fixed page, one-sided) stay apart."""

from __future__ import annotations

import json
import random
import string
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steppewatch.archive import Archive
from steppewatch.index import Index
from steppewatch.models import Article
from steppewatch.store import LocalStore
from tests.test_index import make

SITE = "http://www.qazpost.test"


def words(seed: int) -> str:
    """A text sharing no words with another seed's: editions share no text, so only their links join them."""
    rng = random.Random(seed)
    return " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 9))) for _ in range(200))


def edition(path: str, seed: int, language: str, declares: dict[str, str], published: str) -> Article:
    article = make(f"{SITE}{path}", words(seed), site="qazpost", published=published, language=language)
    return replace(article, editions=declares)


def trio() -> dict[str, Article]:
    """One article in three editions, each declaring the other two (spelt as templates do:
    the other scheme, no www., as Kazakh under "kz")."""
    en, ru, kk = "/en/news/2024/12/03/astana-talks/", "/ru/news/2024/12/03/astana-talks/", "/kz/news/2024/12/03/astana/"
    return {
        "en": edition(en, 0, "en", {f"https://qazpost.test{ru}": "ru", f"{SITE}{kk}": "kk"}, "2024-12-03T10:40:00+05:00"),
        "ru": edition(ru, 1, "ru", {f"{SITE}{en}": "en", f"{SITE}{kk}": "kk"}, "2024-12-03T10:00:00+05:00"),
        "kk": edition(kk, 2, "kk", {f"{SITE}{en}": "en", f"https://www.qazpost.test{ru}": "ru"},
                      "2024-12-03T11:00:00+05:00"),
    }


def traps(story: dict[str, Article]) -> dict[str, Article]:
    """Unrelated Russian pages of the same outlet whose templates point hreflang elsewhere."""
    en_url = story["en"].canonical_url
    return {
        # every page's English alternate is one fixed page (here: the trio's English edition)
        "shared": edition("/ru/news/2024/12/03/grain-exports/", 3, "ru", {en_url: "en"}, "2024-12-03T12:00:00+05:00"),
        "shared2": edition("/ru/news/2024/12/04/railway/", 4, "ru", {en_url: "en"}, "2024-12-04T09:00:00+05:00"),
        # an English page that declares nothing back
        "one_sided": edition("/ru/news/2024/12/03/budget/", 5, "ru", {f"{SITE}/en/news/2024/12/03/budget/": "en"},
                             "2024-12-03T13:00:00+05:00"),
        "one_sided_target": edition("/en/news/2024/12/03/budget/", 6, "en", {}, "2024-12-03T13:30:00+05:00"),
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Index:
    if request.param == "sqlite":
        return Index(f"sqlite:///{tmp_path}/index.sqlite")
    return Index(request.getfixturevalue("pg_index_url"))


@pytest.mark.parametrize("order", [("en", "ru"), ("ru", "en")])
def test_english_and_russian_editions_are_one_story_in_either_order(index: Index, tmp_path: Path,
                                                                     order: tuple[str, str]) -> None:
    store = LocalStore(tmp_path / "s")
    pages = trio()
    results = [Archive(index, store).commit(pages[lang], b"<html></html>") for lang in order]
    stories = index.stories()
    assert stories[pages["en"].id] == stories[pages["ru"].id] == pages["ru"].id  # the earlier publication
    assert results[-1].story_id == pages["ru"].id
    for key in store.list("articles/"):  # the records say so too
        assert json.loads(store.get(key))["story_id"] == pages["ru"].id


def test_alert_rows_follow_the_join(index: Index, tmp_path: Path) -> None:
    import sqlalchemy as sa

    from steppewatch.alerts.outbox import alert_outbox

    store = LocalStore(tmp_path / "s")
    pages = trio()
    Archive(index, store).commit(pages["en"], b"")
    with index.engine.begin() as conn:
        conn.execute(alert_outbox.insert().values(rule="Astana talks", story_id=pages["en"].id,
                                                  article_id=pages["en"].id, mode="immediate", status="pending",
                                                  matched_at=sa.func.now()))
    Archive(index, store).commit(pages["ru"], b"")
    with index.engine.connect() as conn:
        assert conn.execute(sa.select(alert_outbox.c.story_id)).scalars().all() == [pages["ru"].id]


def test_one_sided_shared_and_same_language_alternates_do_not_join(index: Index, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    story, bad = trio(), traps(trio())
    for article in [*bad.values(), *story.values()]:
        Archive(index, store).commit(article, b"")
    stories = index.stories()
    assert len({stories[a.id] for a in story.values()}) == 1
    assert all(stories[a.id] == a.id for a in bad.values())
    # two Russian pages declaring each other (a mobile copy's template) join nothing here
    desk = edition("/ru/news/2024/12/05/tariff/", 7, "ru", {f"{SITE}/ru/m/tariff/": "ru"}, "2024-12-05T10:00:00+05:00")
    mobile = edition("/ru/m/tariff/", 8, "ru", {desk.canonical_url: "ru"}, "2024-12-05T10:00:00+05:00")
    Archive(index, store).commit(desk, b"")
    assert Archive(index, store).commit(mobile, b"").story_id == mobile.id


def test_editions_far_apart_in_time_do_not_join(index: Index, tmp_path: Path) -> None:
    """Path-swapping language switchers with per-language id sequences point /ru/123 at /en/123."""
    store = LocalStore(tmp_path / "s")
    ru = edition("/ru/123/", 0, "ru", {f"{SITE}/en/123/": "en"}, "2024-12-03T10:00:00+05:00")
    en = edition("/en/123/", 1, "en", {f"{SITE}/ru/123/": "ru"}, "2023-02-11T10:00:00+05:00")
    Archive(index, store).commit(ru, b"")
    assert Archive(index, store).commit(en, b"").story_id == en.id


def test_reindex_restores_declared_editions(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    pages = trio()
    first = Index(f"sqlite:///{tmp_path}/a.sqlite")
    Archive(first, store).commit(pages["en"], b"")
    second = Index(f"sqlite:///{tmp_path}/b.sqlite")
    assert Archive(second, store).rebuild() == {"records": 1, "aliases": 0}
    Archive(second, store).commit(pages["ru"], b"")  # joins through the English record's restored declarations
    assert second.stories()[pages["en"].id] == pages["ru"].id


def test_old_records_without_editions_still_load(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    pages = trio()
    index = Index(f"sqlite:///{tmp_path}/a.sqlite")
    key = Archive(index, store).commit(pages["en"], b"").keys[1]
    record = json.loads(store.get(key))
    del record["editions"]
    store.put(key, json.dumps(record).encode(), "application/json")
    assert Archive(Index(f"sqlite:///{tmp_path}/b.sqlite"), store).rebuild()["records"] == 1


ALL = [*trio(), *traps(trio())]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(ALL), runs=st.integers(min_value=1, max_value=3))
def test_any_order_gives_one_story_per_article_and_traps_apart(order: list[str], runs: int) -> None:
    story, bad = trio(), traps(trio())
    pages = {**story, **bad}
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp) / "s")
        # several runs: each its own Index object on the same file, as separate crawls are
        for n, chunk in enumerate(order[i::runs] for i in range(runs)):
            index = Index(f"sqlite:///{tmp}/index.sqlite")
            for name in chunk:
                Archive(index, store).commit(pages[name], f"<html>{n}</html>".encode())
            index.engine.dispose()
        stories = Index(f"sqlite:///{tmp}/index.sqlite").stories()
    assert {stories[a.id] for a in story.values()} == {story["ru"].id}
    assert all(stories[a.id] == a.id for a in bad.values())


def test_bench_has_no_false_joins_or_misses() -> None:
    from bench.language_editions import evaluate

    counts = evaluate()
    assert counts["language_editions"]["fn"] == 0 and counts["editions_traps"]["fp"] == 0, counts
    assert counts["language_editions"]["tp"] > 0 and counts["editions_traps"]["tn"] > 0
