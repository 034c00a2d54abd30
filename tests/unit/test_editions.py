"""A page's language editions (hreflang alternates), read from hand-written ugly heads:
relative and upper-case links, alternates at the home page or a language root, x-default,
other hosts the site owns, duplicates and the page itself."""

from __future__ import annotations

import pytest

from pipelines.extract import edition_language, extract_page, is_language_root, language_editions, parse_html
from steppewatch.models import Article
from steppewatch.registry import Site

SITE = Site(id="qazpost", name="Qazpost", country="KZ", languages=["ru", "kk", "en"],
            allowed_domains=["qazpost.test", "qazpost.kz"], timezone="Asia/Almaty",
            feeds=[{"url": "https://qazpost.test/rss/"}])
PAGE = "https://qazpost.test/ru/news/2024/12/03/astana-talks/"


def editions(head: str, url: str = PAGE, canon: str | None = None) -> dict[str, str]:
    tree = parse_html(f"<!DOCTYPE html><html><head><title>x</title>{head}</head><body><p>x</p></body></html>")
    assert tree is not None
    return language_editions(tree, url, SITE, canon or url)


def test_relative_and_uppercase_alternates_become_canonical_urls() -> None:
    got = editions('<LINK REL="Alternate" HREFLANG="EN" HREF="../../../../../../en/news/2024/12/03/astana-talks/?utm_source=tg#top">'
                   '<link rel="alternate" hreflang="kz" href="//kaz.qazpost.test/kz/news/2024/12/03/astana/">'
                   '<link rel="alternate" hreflang="en_GB" href="/en/news/2024/12/03/astana-talks/">')
    assert got == {"https://qazpost.test/en/news/2024/12/03/astana-talks/": "en",
                   "https://kaz.qazpost.test/kz/news/2024/12/03/astana/": "kk"}


def test_home_pages_language_roots_and_listings_are_not_editions() -> None:
    assert editions('<link rel="alternate" hreflang="en" href="/en/">'
                    '<link rel="alternate" hreflang="kk" href="https://qazpost.test/kz">'
                    '<link rel="alternate" hreflang="x-default" href="https://qazpost.test/">'
                    '<link rel="alternate" hreflang="uz" href="/uz/index.php">'
                    '<link rel="alternate" hreflang="tr" href="/?lang=tr">'
                    '<link rel="alternate" hreflang="en" href="/en/news/">'
                    '<link rel="alternate" hreflang="en" href="/en/search?q=astana">') == {}


def test_x_default_keeps_the_language_it_repeats_and_stands_alone_otherwise() -> None:
    assert editions('<link rel="alternate" hreflang="x-default" href="/en/a-1/">'
                    '<link rel="alternate" hreflang="en" href="/en/a-1/">') == {"https://qazpost.test/en/a-1/": "en"}
    assert editions('<link rel="alternate" hreflang="x-default" href="/en/a-1/">') == {
        "https://qazpost.test/en/a-1/": "x-default"}


def test_other_hosts_the_site_owns_count_and_foreign_hosts_do_not() -> None:
    got = editions('<link rel="alternate" hreflang="en" href="https://www.qazpost.kz/en/a-1/">'
                   '<link rel="alternate" hreflang="kk" href="https://qazpost.test.evil.example/kz/a-1/">'
                   '<link rel="alternate" hreflang="uz" href="https://uzpost.test/uz/a-1/">'
                   '<link rel="alternate" hreflang="tg" href="javascript:void(0)">'
                   '<link rel="alternate" hreflang="ky" href="http://[::1/ky/a-1/">')
    assert got == {"https://www.qazpost.kz/en/a-1/": "en"}


def test_duplicates_the_page_itself_and_non_language_alternates_are_dropped() -> None:
    got = editions('<link rel="alternate" hreflang="ru" href="/ru/news/2024/12/03/astana-talks/">'
                   '<link rel="alternate" hreflang="ru" href="https://qazpost.test/amp/ru/news/2024/12/03/astana-talks/">'
                   '<link rel="alternate" hreflang="en" href="/en/a-1/"><link rel="alternate" hreflang="en" href="/en/a-1/">'
                   '<link rel="alternate" type="application/rss+xml" href="/rss/">'
                   '<link rel="alternate" hreflang="not a language" href="/xx/a-1/">'
                   '<link rel="stylesheet" hreflang="kk" href="/kz/a-1/">'
                   '<meta property="og:locale:alternate" content="en_US">')
    assert got == {"https://qazpost.test/en/a-1/": "en"}


@pytest.mark.parametrize(("value", "want"), [("EN", "en"), ("ru-KZ", "ru"), ("kz", "kk"), ("x-default", "x-default"),
                                             ("zh-Hant-TW", "zh"), ("", None), ("english", None)])
def test_edition_language(value: str, want: str | None) -> None:
    assert edition_language(value) == want


@pytest.mark.parametrize(("url", "root"), [("https://a.test/", True), ("https://a.test/en", True),
                                           ("https://a.test/ru/", True), ("https://a.test/kz/index.html", True),
                                           ("https://a.test/en/a-1/", False), ("https://a.test/news-123", False)])
def test_is_language_root(url: str, root: bool) -> None:
    assert is_language_root(url) is root


def test_extract_page_carries_the_editions_on_the_article() -> None:
    body = "".join(f"<p>Переговоры в Астане, день {n}: делегации обсудили прекращение огня и обмен "
                   f"пленными, сообщили участники встречи.</p>" for n in range(6))
    html = (f'<!DOCTYPE html><html lang="ru"><head><title>Переговоры</title>'
            f'<link rel="canonical" href="{PAGE}"><meta property="og:type" content="article">'
            f'<meta property="article:published_time" content="2024-12-03T10:00:00">'
            f'<link rel="alternate" hreflang="en" href="/en/news/2024/12/03/astana-talks/">'
            f'<link rel="alternate" hreflang="ru" href="{PAGE}"></head>'
            f"<body><article><h1>Переговоры в Астане</h1>{body}</article></body></html>")
    article = extract_page(html, PAGE, SITE)
    assert isinstance(article, Article), article
    assert article.editions == {"https://qazpost.test/en/news/2024/12/03/astana-talks/": "en"}
    assert article.to_dict()["editions"] == article.editions
