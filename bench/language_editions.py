"""Language editions: labelled pairs through extraction and the index, counted.

Hand-written pages of two outlets (a Kazakh one with /ru/, /kz/ and /en/ paths, one with
ru. and en. subdomains) are extracted with ``extract_page`` and committed into a
temporary SQLite index and local store, in one order and in the reverse order. Each
labelled pair is then counted:

- ``language_editions``: pairs that must be one story (each page declares the other,
  under any of the spellings real templates use). tp: one story; fn: apart.
- ``editions_traps``: pairs that must stay apart (alternates at the home page or a
  language root, one page every article points at, a one-sided declaration the other
  page contradicts, a path-swapping switcher reaching an article of another year).
  tp: apart; fp: one story.

Run: ``python -m bench.language_editions``.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

from pipelines.extract import extract_page
from steppewatch.archive import Archive  # noqa: E402
from steppewatch.index import Index
from steppewatch.models import Article
from steppewatch.registry import Site
from steppewatch.store import LocalStore

QAZ = Site(id="qazpost", name="Qazpost", country="KZ", languages=["ru", "kk", "en"], allowed_domains=["qazpost.test"],
           timezone="Asia/Almaty", feeds=[{"url": "http://qazpost.test/rss/"}])
DALA = Site(id="dala", name="Dala", country="KZ", languages=["ru", "en"], allowed_domains=["dala.test"],
            timezone="Asia/Almaty", feeds=[{"url": "http://ru.dala.test/rss/"}])

# Pages of one language share no words here (each its own made-up vocabulary in the
# language's alphabet), so only their links can join them: same-language text
# similarity is another bench's subject (bench/dedup_labelled.py).
_ALPHABETS = {"ru": "абвгдежзиклмнопрстуфхцчшыэюя", "kk": "аәбгғдеиқклмнңоөпрстуұүхһыі",
              "en": "abcdefghiklmnoprstuvwy"}


def _page(lang: str, title: str, published: str, seed: int, head: str) -> str:
    rng = random.Random(seed)
    words = ["".join(rng.choices(_ALPHABETS[lang], k=rng.randint(4, 9))) for _ in range(150)]
    body = "".join("<p>" + " ".join(rng.choice(words) for _ in range(rng.randint(40, 60))) + ".</p>" for _ in range(5))
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta property="og:type" content="article"><meta property="article:published_time" content="{published}">'
            f"{head}</head><body><article><h1>{title}</h1>{body}</article></body></html>")


def _alt(lang: str, href: str) -> str:
    return f'<link rel="alternate" hreflang="{lang}" href="{href}">'


# url -> (site, language, published (local time, no offset), head)
PAGES: dict[str, tuple[Site, str, str, str]] = {
    # one article in three editions, each naming the others (relative, other scheme, "kz")
    "http://qazpost.test/ru/news/1001/": (QAZ, "ru", "2024-12-03T10:00:00",
                                          _alt("en", "/en/news/1001/") + _alt("kz", "https://qazpost.test/kz/news/1001/")),
    "http://qazpost.test/en/news/1001/": (QAZ, "en", "2024-12-03T11:00:00",
                                          _alt("ru", "/ru/news/1001/") + _alt("kk", "/kz/news/1001/")
                                          + _alt("x-default", "/ru/news/1001/")),
    "http://qazpost.test/kz/news/1001/": (QAZ, "kk", "2024-12-03T12:00:00",
                                          _alt("RU", "http://www.qazpost.test/ru/news/1001/")
                                          + _alt("EN", "/en/news/1001/")),
    # subdomain editions, a day apart
    "http://ru.dala.test/politics/tokayev-visit-77/": (DALA, "ru", "2024-12-04T09:00:00",
                                                       _alt("en", "//en.dala.test/politics/tokayev-visit-77/")),
    "http://en.dala.test/politics/tokayev-visit-77/": (DALA, "en", "2024-12-05T08:00:00",
                                                       _alt("ru-KZ", "http://ru.dala.test/politics/tokayev-visit-77/")),
    # traps: alternates at home pages / language roots
    "http://qazpost.test/ru/news/1002/": (QAZ, "ru", "2024-12-03T13:00:00", _alt("en", "/en/") + _alt("kk", "/kz")),
    "http://qazpost.test/en/news/1003/": (QAZ, "en", "2024-12-03T13:30:00",
                                          _alt("ru", "/ru/") + _alt("x-default", "/")),
    # traps: every page of an old template points its English alternate at one page
    "http://qazpost.test/ru/news/1004/": (QAZ, "ru", "2024-12-03T14:00:00", _alt("en", "/en/news/1001/")),
    "http://qazpost.test/ru/news/1005/": (QAZ, "ru", "2024-12-03T15:00:00", _alt("en", "/en/news/1001/")),
    # trap: one-sided, the other page declares nothing
    "http://ru.dala.test/economy/grain-80/": (DALA, "ru", "2024-12-04T10:00:00",
                                              _alt("en", "http://en.dala.test/economy/budget-81/")),
    "http://en.dala.test/economy/budget-81/": (DALA, "en", "2024-12-04T11:00:00", ""),
    # trap: a path-swapping switcher with per-language ids reaches an article of another year
    "http://qazpost.test/ru/news/2001/": (QAZ, "ru", "2024-12-03T16:00:00", _alt("en", "/en/news/2001/")),
    "http://qazpost.test/en/news/2001/": (QAZ, "en", "2023-05-17T16:00:00", _alt("ru", "/ru/news/2001/")),
}

EDITION_PAIRS = [
    ("http://qazpost.test/ru/news/1001/", "http://qazpost.test/en/news/1001/"),
    ("http://qazpost.test/ru/news/1001/", "http://qazpost.test/kz/news/1001/"),
    ("http://qazpost.test/en/news/1001/", "http://qazpost.test/kz/news/1001/"),
    ("http://ru.dala.test/politics/tokayev-visit-77/", "http://en.dala.test/politics/tokayev-visit-77/"),
]
TRAP_PAIRS = [
    ("http://qazpost.test/ru/news/1002/", "http://qazpost.test/en/news/1003/"),
    ("http://qazpost.test/ru/news/1004/", "http://qazpost.test/en/news/1001/"),
    ("http://qazpost.test/ru/news/1005/", "http://qazpost.test/en/news/1001/"),
    ("http://qazpost.test/ru/news/1004/", "http://qazpost.test/ru/news/1005/"),
    ("http://ru.dala.test/economy/grain-80/", "http://en.dala.test/economy/budget-81/"),
    ("http://qazpost.test/ru/news/2001/", "http://qazpost.test/en/news/2001/"),
]


def _articles() -> dict[str, Article]:
    out: dict[str, Article] = {}
    for n, (url, (site, lang, published, head)) in enumerate(PAGES.items()):
        got = extract_page(_page(lang, f"{site.name} {n}", published, n, head), url, site)
        if not isinstance(got, Article) or got.language != lang:
            raise ValueError(f"bench page {url} was not extracted as a {lang} article: {got}")
        out[url] = got
    return out


def _stories(order: list[Article]) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        index = Index(f"sqlite:///{tmp}/index.sqlite")
        store = LocalStore(Path(tmp) / "store")
        for article in order:
            Archive(index, store).commit(article, b"<html></html>")
        stories = index.stories()
        index.engine.dispose()
    return stories


def evaluate() -> dict[str, dict[str, int]]:
    """tp/fp/fn/tn per category, over both commit orders (each pair counted once per order); a
    decision is positive when the two pages become one story, so a trap kept apart is a tn."""
    articles = _articles()
    counts = {"language_editions": {"tp": 0, "fp": 0, "fn": 0, "tn": 0},
              "editions_traps": {"tp": 0, "fp": 0, "fn": 0, "tn": 0}}
    listed = list(articles.values())
    for order in (listed, listed[::-1]):
        stories = _stories(order)
        for a, b in EDITION_PAIRS:
            joined = stories[articles[a].id] == stories[articles[b].id]
            counts["language_editions"]["tp" if joined else "fn"] += 1
        for a, b in TRAP_PAIRS:
            joined = stories[articles[a].id] == stories[articles[b].id]
            counts["editions_traps"]["fp" if joined else "tn"] += 1
    return counts


if __name__ == "__main__":
    print(json.dumps(evaluate(), indent=1))
