"""Canonical URLs: tracking parameters, fragments, AMP variants, declared canonicals."""

from __future__ import annotations

import pytest

from steppewatch.models import article_id
from steppewatch.urls import canonical_url, clean_url, strip_amp

DOMAINS = ["steppe-times.test"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://Steppe-Times.test/news/a/?utm_source=rss&utm_medium=feed#top", "http://steppe-times.test/news/a/"),
        ("http://steppe-times.test/news/a/?fbclid=XYZ&gclid=1&id=5", "http://steppe-times.test/news/a/?id=5"),
        ("http://steppe-times.test/news?b=2&a=1", "http://steppe-times.test/news?a=1&b=2"),
        ("http://steppe-times.test:80/x", "http://steppe-times.test/x"),
        ("http://xn--80ak6aa92e.com/путь", "http://xn--80ak6aa92e.com/%D0%BF%D1%83%D1%82%D1%8C"),
        ("http://пример.test/a", "http://xn--e1afmkfd.test/a"),
    ],
)
def test_clean_url(url: str, expected: str) -> None:
    assert clean_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://steppe-times.test/amp/news/a/", "http://steppe-times.test/news/a/"),
        ("http://steppe-times.test/news/a/amp/", "http://steppe-times.test/news/a/"),
        ("http://m.steppe-times.test/news/a/", "http://steppe-times.test/news/a/"),
        ("http://steppe-times.test/news/a.amp.html", "http://steppe-times.test/news/a.html"),
        ("http://steppe-times.test/news/example/", "http://steppe-times.test/news/example/"),
    ],
)
def test_strip_amp(url: str, expected: str) -> None:
    assert strip_amp(url) == expected


def test_strip_amp_keeps_a_mobile_prefix_that_the_allowed_domains_need() -> None:
    assert strip_amp("http://m.kz/news/1/", ["m.kz"]) == "http://m.kz/news/1/"
    assert strip_amp("http://m.abc.kz/news/1/amp/", ["m.abc.kz"]) == "http://m.abc.kz/news/1/"
    assert strip_amp("http://m.abc.kz/news/1/amp/", ["abc.kz"]) == "http://abc.kz/news/1/"


def test_declared_canonical_wins_only_inside_allowed_domains() -> None:
    fetched = "http://steppe-times.test/amp/news/a/?utm_source=x"
    assert canonical_url(fetched, ["/news/a/"], DOMAINS) == "http://steppe-times.test/news/a/"
    assert canonical_url(fetched, ["http://evil.example/news/a/"], DOMAINS) == "http://steppe-times.test/news/a/"
    assert canonical_url(fetched, [None, "javascript:alert(1)"], DOMAINS) == "http://steppe-times.test/news/a/"


def test_article_id_is_stable_hex() -> None:
    a = article_id("http://steppe-times.test/news/a/")
    assert a == article_id("http://steppe-times.test/news/a/") and len(a) == 16
    assert all(c in "0123456789abcdef" for c in a)
