"""Articles that hourly windows used to lose, crawled for real on the replay server.

An Asia/Almaty site (UTC+5) whose feed gives exact times with offsets while its pages say
less or say it wrong: a page with only a date, a page whose naive time is UTC written
without its Z (5 hours off), a page dated 1900-01-01, a page dated day-first in a meta tag
(03.12.2024 14:05), and a feed entry dated 9999-12-31. Crawled as contiguous hourly
scheduled runs (``--mode discover``) and as hourly and daily backfills, sharing one store
and index: every article is stored exactly once, with the date the rule says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from steppewatch.replay import ReplayServer
from tests.reliability.helpers import FAST, ROOT, article_html, local_records, write_registry

HOST = "almaty-wire.test"
TZ_NOTE = "Asia/Almaty"


def _page(path: str, title: str, head_date: str, seed: int) -> str:
    url = f"http://{HOST}{path}"
    # article_html writes article:published_time; these pages carry other date forms
    html = article_html(url, title, "REPLACE", seed, lang="ru")
    return html.replace('<meta property="article:published_time" content="REPLACE">', head_date)


ARTICLES = {
    # path: (feed pubDate, the page's own date markup, expected published (UTC), expected date_source)
    "/news/date-only/": ("Tue, 03 Dec 2024 09:40:00 +0000",
                         '<meta property="article:published_time" content="2024-12-03">',
                         "2024-12-03T09:40:00+00:00", "feed"),
    "/news/utc-without-z/": ("Tue, 03 Dec 2024 09:00:00 +0000",
                             '<meta property="article:published_time" content="2024-12-03T09:00:00">',
                             "2024-12-03T09:00:00+00:00", "feed"),
    "/news/year-1900/": ("Tue, 03 Dec 2024 11:00:00 +0000",
                         '<meta property="article:published_time" content="1900-01-01">',
                         "2024-12-03T11:00:00+00:00", "feed"),
    "/news/day-first/": ("Tue, 03 Dec 2024 09:05:00 +0000",
                         '<meta name="date" content="03.12.2024 14:05">',
                         "2024-12-03T09:05:00+00:00", "page"),
}


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, ReplayServer]:
    root = tmp_path / "sites" / HOST
    items = ["<item><title>never expires</title><link>http://almaty-wire.test/news/forever/</link>"
             "<pubDate>Fri, 31 Dec 9999 23:59:59 +0000</pubDate></item>"]
    for n, (path, (pub, head, _, _)) in enumerate(ARTICLES.items()):
        (root / path.strip("/")).mkdir(parents=True)
        (root / path.strip("/") / "index.html").write_text(_page(path, f"Новость {n}", head, seed=100 + n), "utf-8")
        items.append(f"<item><title>Новость {n}</title><link>http://{HOST}{path}</link><pubDate>{pub}</pubDate></item>")
    (root / "news" / "forever").mkdir(parents=True)
    (root / "news" / "forever" / "index.html").write_text(
        _page("/news/forever/", "Вечная новость", '<meta property="article:published_time" content="2024-12-03T12:00:00+05:00">',
              seed=99), "utf-8")
    (root / "feed.xml").write_text("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
                                   + "".join(items) + "</channel></rss>", "utf-8")
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    (root / "_site.yaml").write_text(yaml.safe_dump({"charset": "utf-8", "routes": {}}))
    write_registry(tmp_path / "sites.yaml", [{
        "id": "almaty_wire", "name": HOST, "country": "KZ", "languages": ["ru"], "allowed_domains": [HOST],
        "timezone": TZ_NOTE, "feeds": [{"url": f"http://{HOST}/feed.xml"}]}])
    server = ReplayServer(tmp_path / "sites")
    server.start()
    yield tmp_path, server
    server.stop()


def _crawl(base: Path, server: ReplayServer, store: Path, since: datetime, until: datetime,
           mode: str) -> dict[str, Any]:
    args = [sys.executable, "-m", "steppewatch.cli", "crawl", "almaty_wire", "--since", since.isoformat(),
            "--until", until.isoformat(), "--mode", mode, "--json"]
    for setting in FAST:
        args += ["--set", setting]
    env = dict(os.environ, STEPPEWATCH_SITES=str(base / "sites.yaml"), STEPPEWATCH_STORE=str(store),
               STEPPEWATCH_INDEX_URL=f"sqlite:///{store}.sqlite", STEPPEWATCH_PROXY=server.url)
    proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _hours(start: datetime, count: int) -> list[tuple[datetime, datetime]]:
    return [(start + timedelta(hours=k), start + timedelta(hours=k + 1)) for k in range(count)]


def _check(store: Path) -> None:
    records = local_records(store)
    by_url = Counter(r["canonical_url"] for r in records)
    assert all(n == 1 for n in by_url.values()), by_url
    got = {r["canonical_url"]: r for r in records}
    for path, (_, _, published, source) in ARTICLES.items():
        record = got[f"http://{HOST}{path}"]
        assert datetime.fromisoformat(record["published"]).astimezone(UTC) == datetime.fromisoformat(published), path
        assert record["date_source"] == source, path
    # listed with 9999-12-31: the entry lost its date, the page dated it
    assert got[f"http://{HOST}/news/forever/"]["published"] == "2024-12-03T12:00:00+05:00"


@pytest.mark.parametrize("mode", ["discover", "backfill"])
def test_contiguous_hourly_runs_store_every_article_once(site: tuple[Path, ReplayServer], mode: str) -> None:
    base, server = site
    store = base / f"store-{mode}"
    summaries = [_crawl(base, server, store, since, until, mode)
                 for since, until in _hours(datetime(2024, 12, 3, 6, tzinfo=UTC), 6)]
    _check(store)
    # the 9999-12-31 entry lost its date, not the rest of the feed
    first = summaries[0]["sites"]["almaty_wire"]
    assert not first["source_errors"]
    # the page whose naive time was 5 h off its feed's is counted; every date's source too
    assert first["dates"] == {"page_time_overruled": 1}
    assert sum(first["date_source"].values()) == first["stored"] == len(ARTICLES) + 1
    # a second pass of the same hours fetches no stored article again
    again = [_crawl(base, server, store, since, until, mode)
             for since, until in _hours(datetime(2024, 12, 3, 6, tzinfo=UTC), 2)]
    assert all(s["sites"]["almaty_wire"]["stored"] == 0 for s in again)


def test_a_daily_backfill_after_hourly_runs_stores_nothing_twice(site: tuple[Path, ReplayServer]) -> None:
    base, server = site
    store = base / "store-both"
    for since, until in _hours(datetime(2024, 12, 3, 8, tzinfo=UTC), 3):
        _crawl(base, server, store, since, until, "discover")
    _crawl(base, server, store, datetime(2024, 12, 3, tzinfo=UTC), datetime(2024, 12, 4, tzinfo=UTC), "backfill")
    _check(store)
