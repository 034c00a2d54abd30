"""Building blocks of the reliability tests: small sites written on the fly, the crawl CLI
in a subprocess, and a check that the store and the index agree.

A site is a directory in the replay server's layout (``steppewatch/replay.py``): article
pages, an RSS feed listing them (and whatever misbehaving URLs a test adds), robots.txt
and a ``_site.yaml`` of routes, among them the server's ``fault:`` routes.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[2]
SINCE, UNTIL = "2024-12-01T00:00:00Z", "2024-12-08T00:00:00Z"
FAST = ["AUTOTHROTTLE_ENABLED=false", "DOWNLOAD_DELAY=0", "RETRY_BACKOFF_BASE=0.05", "STORE_RETRY_BACKOFF=0.2",
        "LOG_LEVEL=INFO"]
WORDS = ("government ministry region river steppe election budget railway grain export parliament minister "
         "capital border talks energy pipeline tariff harvest school hospital court bank currency inflation "
         "airport highway mining copper uranium festival museum weather drought water glacier reform investment "
         "transport citizens council agreement delegation cotton wheat textile bridge tunnel").split()


def article_html(url: str, title: str, published: str, seed: int, lang: str = "en", extra_head: str = "",
                 body_prefix: str = "") -> str:
    rng = random.Random(seed)
    paragraphs = "".join(
        "<p>" + " ".join(rng.choice(WORDS) + (str(rng.randrange(900)) if rng.random() < 0.3 else "")
                         for _ in range(rng.randint(45, 70))) + ".</p>"
        for _ in range(5))
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>'
            f'<link rel="canonical" href="{url}"><meta property="og:type" content="article">'
            f'<meta property="article:published_time" content="{published}">{extra_head}</head><body>'
            f'<nav><a href="/">Home</a></nav><aside><h3>Latest news</h3><ul><li><a href="/other/">Astana talks '
            f'resume, officials say</a></li></ul></aside><article><h1>{title}</h1>{body_prefix}{paragraphs}'
            f"</article><footer>Footer</footer></body></html>")


@dataclass
class SiteSpec:
    """One replayed site: ``articles`` are good pages; ``extra`` are listed URLs with their routes."""

    host: str
    site_id: str
    articles: int = 6
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> replay route
    feed_items: list[str] = field(default_factory=list)  # raw <item> XML added to the feed
    feed_route: dict[str, Any] | None = None
    registry_extra: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # more files of the site, by path
    unlisted: dict[str, dict[str, Any]] = field(default_factory=dict)  # routes the feed does not list

    def article_urls(self) -> list[str]:
        return [f"http://{self.host}/news/{n}/" for n in range(self.articles)]


def write_site(sites_root: Path, spec: SiteSpec) -> dict[str, Any]:
    """Write the site; return its registry entry."""
    site = sites_root / spec.host
    site.mkdir(parents=True, exist_ok=True)
    (site / "robots.txt").write_text("User-agent: *\nDisallow: /admin/\n")
    items = []
    for n, url in enumerate(spec.article_urls()):
        published = f"2024-12-0{2 + n % 5}T0{n % 10}:15:00+00:00"
        title = f"{spec.site_id} story {n} on grain exports"
        page = site / "news" / str(n)
        page.mkdir(parents=True, exist_ok=True)
        (page / "index.html").write_text(article_html(url, title, published, seed=zlib.crc32(f"{spec.host}{n}".encode())))
        items.append(_item(url, title, published))
    for rel, content in spec.files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(content, "utf-8")
    for path in spec.extra:
        items.append(_item(f"http://{spec.host}{path}", f"extra {path}", "2024-12-03T10:00:00+00:00"))
    items += spec.feed_items
    (site / "feed.xml").write_text(f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
                                   f"<title>{spec.host}</title>{''.join(items)}</channel></rss>", "utf-8")
    routes = {**spec.extra, **spec.unlisted}
    if spec.feed_route is not None:
        routes["/feed.xml"] = spec.feed_route
    (site / "_site.yaml").write_text(yaml.safe_dump({"charset": "utf-8", "routes": routes}))
    return {"id": spec.site_id, "name": spec.host, "country": "KZ", "languages": ["en"],
            "allowed_domains": [spec.host], "timezone": "UTC", "feeds": [{"url": f"http://{spec.host}/feed.xml"}],
            **spec.registry_extra}


def _item(url: str, title: str, published: str) -> str:
    from datetime import datetime

    when = datetime.fromisoformat(published).strftime("%a, %d %b %Y %H:%M:%S +0000")
    return f"<item><title>{title}</title><link>{url}</link><pubDate>{when}</pubDate></item>"


def write_registry(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"sites": entries}, allow_unicode=True), "utf-8")
    return path


@dataclass
class Crawl:
    returncode: int
    summary: dict[str, Any] | None
    stdout: str
    stderr: str


def crawl(registry: Path, store: str, index: str, proxy: str | None, *sites: str, extra: list[str] | None = None,
          env: dict[str, str] | None = None, timeout: float = 300) -> Crawl:
    """``steppewatch crawl`` in a subprocess (its own reactor), politeness off."""
    args = [sys.executable, "-m", "steppewatch.cli", "crawl", *(sites or ["--all"]), "--since", SINCE,
            "--until", UNTIL, "--json"]
    for setting in FAST + (extra or []):
        args += ["--set", setting]
    full_env = dict(os.environ, STEPPEWATCH_SITES=str(registry), STEPPEWATCH_STORE=store, STEPPEWATCH_INDEX_URL=index,
                    **(env or {}))
    if proxy:
        full_env["STEPPEWATCH_PROXY"] = proxy
    else:
        full_env.pop("STEPPEWATCH_PROXY", None)
    proc = subprocess.run(args, env=full_env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    try:
        summary = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        summary = None
    return Crawl(proc.returncode, summary, proc.stdout, proc.stderr)


def source(summary: dict[str, Any], site: str, url_part: str) -> dict[str, Any]:
    return next(s for s in summary["sites"][site]["sources"] if url_part in s["url"])


def local_records(store: Path, kind: str = "articles") -> list[dict[str, Any]]:
    return [json.loads(p.read_text("utf-8")) for p in sorted(store.glob(f"{kind}/site=*/date=*/*.json"))]


def assert_store_and_index_agree(store_uri: str, index_url: str, orphan_raw_pages: bool = False) -> dict[str, int]:
    """Every index row has its objects, every object its row, each article once; returns counts.

    ``orphan_raw_pages``: after a run that failed mid-commit, a raw page may be there
    without its record (objects are written first, the rows then rolled back); the
    rerun writes it again under the same key. It hides nothing.
    """
    from steppewatch.db import articles
    from steppewatch.store import open_store

    store = open_store(store_uri)
    engine = sa.create_engine(index_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(articles.c.id, articles.c.site, articles.c.day, articles.c.key,
                                      articles.c.alias_of, articles.c.canonical_url)).all()
    engine.dispose()
    record_keys = set(store.list("articles/"))
    alias_keys = set(store.list("aliases/"))
    raw_keys = set(store.list("raw/"))
    held = [r for r in rows if r.alias_of is None]
    assert {r.key for r in held} == record_keys, "records in the store and records in the index differ"
    assert {r.key for r in rows if r.alias_of is not None} == alias_keys
    expected_raw = {f"raw/site={r.site}/date={r.day}/{r.id}.html.gz" for r in held}
    if orphan_raw_pages:
        assert expected_raw <= raw_keys, "a record without its raw page"
    else:
        assert expected_raw == raw_keys, "raw pages and records differ"
    canonical = [json.loads(store.get(k))["canonical_url"] for k in sorted(record_keys)]
    assert len(canonical) == len(set(canonical)), "an article is stored twice"
    for key in sorted(raw_keys):
        assert gzip.decompress(store.get(key)), key
    return {"records": len(record_keys), "aliases": len(alias_keys)}


def stored_count(index: str) -> int:
    """Articles in the index (0 while it cannot be read yet: a crawl still creating it)."""
    engine = sa.create_engine(index, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM articles").scalar() or 0)
    except sa.exc.SQLAlchemyError:
        return 0
    finally:
        engine.dispose()
