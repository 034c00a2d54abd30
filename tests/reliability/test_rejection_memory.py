"""Pages extraction rejects are remembered (issue 13): the next runs do not fetch them
again until a re-check is due, on SQLite and on PostgreSQL, through the crawl CLI against
the replay server, which counts every request.

The site's feed lists two good articles, a page too short to be an article, a page that
says "Page not found" with a 200, and a tag page (a listing) whose links lead to
articles. The tag page is never remembered: it is fetched every run, so an article that
appears only on it is still found.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from steppewatch.archive import Archive
from steppewatch.index import FetchPolicy, Index, rejection_schedule
from steppewatch.replay import ReplayServer
from tests.reliability.helpers import (
    FAST,
    ROOT,
    SINCE,
    UNTIL,
    SiteSpec,
    article_html,
    assert_store_and_index_agree,
    crawl,
    local_records,
    write_registry,
    write_site,
)

HOST = "remember.test"
SHORT, GONE, TAG = f"http://{HOST}/short/", f"http://{HOST}/gone/", f"http://{HOST}/tag/grain/"
SHORT_HTML = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Brief note</title></head>"
              "<body><article><h1>Brief note</h1><p>Markets closed early today.</p></article></body></html>")
GONE_HTML = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Page not found</title></head>"
             "<body><h1>Page not found</h1><p>Sorry, the page you asked for does not exist.</p></body></html>")


def tag_page(numbers: list[int]) -> str:
    items = "".join(f"<li><h2><a href='/news/{n}/'>remember story {n} on grain exports and the harvest</a></h2></li>"
                    for n in numbers)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Tag: grain</title></head>"
            f"<body><h1>Grain</h1><ul>{items}</ul></body></html>")


@pytest.fixture(params=["sqlite", "postgresql"])
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/index.sqlite"
    return request.getfixturevalue("pg_index_url")


class Site:
    """The replayed site, its registry and store, and crawls of it counted per path."""

    def __init__(self, base: Path, index: str) -> None:
        self.base, self.index, self.store = base, index, str(base / "store")
        self.root = base / "sites" / HOST
        spec = SiteSpec(HOST, "remember", articles=2, extra={"/short/": {}, "/gone/": {}, "/tag/grain/": {}},
                        files={"short/index.html": SHORT_HTML, "gone/index.html": GONE_HTML,
                               "tag/grain/index.html": tag_page([0, 1]), "latest/index.html": tag_page([0])},
                        registry_extra={"listings": [{"url": f"http://{HOST}/latest/",
                                                      "article_pattern": r"/news/\d+/$"}]})
        self.registry = write_registry(base / "sites.yaml", [write_site(base / "sites", spec)])
        self.server = ReplayServer(base / "sites")
        self.server.start()

    def crawl(self, *settings: str) -> dict[str, Any]:
        """One run over the window; the site's summary."""
        result = crawl(self.registry, self.store, self.index, self.server.url, extra=list(settings))
        assert result.returncode == 0 and result.summary is not None, result.stderr[-3000:]
        return result.summary["sites"]["remember"]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Another CLI command on the same registry, store and index (politeness off for crawls)."""
        fast = [a for s in FAST for a in ("--set", s)] if args[0] == "crawl" else []
        env = dict(os.environ, STEPPEWATCH_SITES=str(self.registry), STEPPEWATCH_STORE=self.store,
                   STEPPEWATCH_INDEX_URL=self.index, STEPPEWATCH_PROXY=self.server.url)
        proc = subprocess.run([sys.executable, "-m", "steppewatch.cli", *args, *fast], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    def hits(self, path: str) -> int:
        return self.server.count(HOST, f"^{path}$")

    def remembered(self, url: str) -> Any:
        index = Index(self.index)
        try:
            return index.rejection(url)
        finally:
            index.engine.dispose()

    def urls_stored(self) -> set[str]:
        return {r["url"] for r in local_records(Path(self.store))}


@pytest.fixture
def site(tmp_path: Path, index_url: str) -> Iterator[Site]:
    s = Site(tmp_path, index_url)
    yield s
    s.server.stop()


def test_rejected_pages_are_not_fetched_again_until_due_and_listings_still_lead_to_articles(site: Site) -> None:
    first = site.crawl()
    assert first["rejected"] == {"too_short": 1, "error_page": 1, "listing": 1}, first["rejected"]
    assert first["stored"] == 2
    assert (site.hits("/short/"), site.hits("/gone/"), site.hits("/tag/grain/")) == (1, 1, 1)
    for url, reason in ((SHORT, "too_short"), (GONE, "error_page")):
        row = site.remembered(url)
        assert row is not None and row.reason == reason and row.site == "remember" and row.checks == 1, row
        assert row.first_rejected == row.last_checked
    assert site.remembered(TAG) is None, "a listing is not remembered: its links are followed every run"

    # the tag page now also links an article that no feed lists
    (site.root / "news" / "9").mkdir(parents=True)
    (site.root / "news" / "9" / "index.html").write_text(
        article_html(f"http://{HOST}/news/9/", "remember story 9 on grain exports", "2024-12-05T08:00:00+00:00", 99))
    (site.root / "tag" / "grain" / "index.html").write_text(tag_page([0, 1, 9]))

    second = site.crawl()
    assert (site.hits("/short/"), site.hits("/gone/")) == (1, 1), "rejected pages fetched again"
    assert second["skipped"]["rejected_recently"] == 2
    assert second["skipped"]["already_stored"] == 2, second["skipped"]  # the two feed articles, nothing else
    assert site.hits("/tag/grain/") == 2 and second["rejected"] == {"listing": 1}
    assert site.hits("/news/9/") == 1 and second["stored"] == 1, "the article found through the listing"
    assert site.remembered(SHORT).checks == 1  # not fetched, not checked
    assert site.urls_stored() == {
        f"http://{HOST}/news/0/", f"http://{HOST}/news/1/", f"http://{HOST}/news/9/"}
    assert_store_and_index_agree(site.store, site.index)


def test_a_due_recheck_fetches_them_again_and_a_page_now_an_article_is_stored_and_forgotten(site: Site) -> None:
    site.crawl()
    assert (site.hits("/short/"), site.hits("/gone/")) == (1, 1)

    # the stub has become a full article; re-checks due at once
    (site.root / "short" / "index.html").write_text(
        article_html(SHORT, "A brief note grew into a story", "2024-12-04T07:00:00+00:00", 42))
    recheck = site.crawl("NEWS_REJECTION_RECHECK=[0]")
    assert (site.hits("/short/"), site.hits("/gone/")) == (2, 2), "due re-checks fetch them again"
    assert "rejected_recently" not in recheck["skipped"]
    assert recheck["rejected"] == {"error_page": 1, "listing": 1} and recheck["stored"] == 1
    assert SHORT in site.urls_stored()
    assert site.remembered(SHORT) is None, "stored now: no longer remembered as rejected"
    gone = site.remembered(GONE)
    assert gone.checks == 2 and gone.last_checked > gone.first_rejected

    # default schedule again: the new article is known as stored, the error page as rejected
    after = site.crawl()
    assert (site.hits("/short/"), site.hits("/gone/")) == (2, 2)
    assert after["skipped"]["rejected_recently"] == 1 and after["skipped"]["already_stored"] == 3

    # --reprocess fetches everything again, remembered rejections included
    site.cli("crawl", "remember", "--since", SINCE, "--until", UNTIL, "--json", "--reprocess")
    assert (site.hits("/short/"), site.hits("/gone/")) == (3, 3)
    assert site.remembered(GONE).checks == 3

    # reindex rebuilds the articles from the store into the same database: it does not fail on
    # the rejections (the store does not hold them; URLs stored are not remembered)
    site.cli("reindex")
    assert site.remembered(SHORT) is None and site.remembered(GONE) is not None
    assert_store_and_index_agree(site.store, site.index)


def test_the_schedule_grows_then_repeats_its_last_interval(index_url: str) -> None:
    index = Index(index_url, FetchPolicy(rejection_recheck=rejection_schedule([24, 168, 720])))
    t = datetime(2025, 1, 1, tzinfo=UTC)
    index.remember_rejection([GONE], "remember", "error_page", now=t)
    for wait in (24, 168, 720, 720):
        assert index.skip_reason(GONE, now=t + timedelta(hours=wait) - timedelta(seconds=1)) == "rejected_recently"
        assert index.should_fetch(GONE, now=t + timedelta(hours=wait))
        t += timedelta(hours=wait)
        index.remember_rejection([GONE], "remember", "error_page", now=t)
    assert index.rejection(GONE).checks == 5
    assert index.should_fetch(GONE, now=t, reprocess=True)
    assert rejection_schedule("24,168") == (timedelta(hours=24), timedelta(hours=168))
    for bad in (None, [], [-1], ["soon"]):
        with pytest.raises(ValueError, match="NEWS_REJECTION_RECHECK"):
            rejection_schedule(bad)
    index.engine.dispose()


def test_migration_0007_adds_the_rejections_table_to_an_existing_index_and_removes_it(index_url: str) -> None:
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config as AlembicConfig

    import steppewatch.index as index_module

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(index_module.__file__).parent / "migrations"))
    engine = sa.create_engine(index_url, poolclass=sa.pool.NullPool)

    def migrate(step: object, target: str) -> None:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            step(cfg, target)  # type: ignore[operator]

    migrate(command.upgrade, "0006")  # an index as the previous release left it
    assert "rejections" not in sa.inspect(engine).get_table_names()
    index = Index(index_url, FetchPolicy(rejection_recheck=rejection_schedule([24])))  # upgrades on open
    assert index.remember_rejection([GONE], "remember", "error_page") == 1
    assert index.skip_reason(GONE) == "rejected_recently"
    index.engine.dispose()
    migrate(command.downgrade, "0006")
    assert "rejections" not in sa.inspect(engine).get_table_names()
    migrate(command.upgrade, "head")
    assert {c["name"] for c in sa.inspect(engine).get_columns("rejections")} == {
        "url_hash", "url", "site", "reason", "first_rejected", "last_checked", "checks"}
    engine.dispose()


def test_every_url_form_is_remembered_and_storing_an_article_at_any_of_them_forgets_them_all(
        index_url: str, tmp_path: Path) -> None:
    from steppewatch.models import Article, article_id, content_hash
    from steppewatch.store import LocalStore

    index = Index(index_url, FetchPolicy(rejection_recheck=rejection_schedule([24])))
    asked, landed = f"http://{HOST}/old/", f"http://{HOST}/new/?utm_source=feed"  # a redirect, tracking kept
    assert index.remember_rejection([landed, asked], "remember", "too_short") == 3  # landed, cleaned, asked
    for url in (asked, landed, f"http://{HOST}/new/"):
        assert index.skip_reason(url) == "rejected_recently", url
    text = " ".join(f"word{n} grain export talks" for n in range(80))
    canonical = f"http://{HOST}/new/"
    article = Article(id=article_id(canonical), url=landed, canonical_url=canonical, site="remember", title="t",
                      text=text, published="2024-12-03T10:00:00+00:00", date_source="page", language="en",
                      fetched_at=datetime.now(UTC).isoformat(), http_status=200, content_hash=content_hash(text))
    Archive(index, LocalStore(tmp_path / "store")).commit(article, b"<html></html>", extra_urls=[asked])
    for url in (asked, landed, canonical):
        assert index.rejection(url) is None and index.skip_reason(url) == "already_stored", url
    assert index.remember_rejection([asked], "remember", "too_short") == 0, "a stored URL is not a rejection"
    assert index.forget_rejection([asked]) == 0
    index.engine.dispose()
