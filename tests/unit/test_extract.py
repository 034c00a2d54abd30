"""Extraction as a pure function: seed surroundings stay out, non-articles are rejected."""

from __future__ import annotations

import html
from datetime import UTC
from pathlib import Path

import pytest

from pipelines.extract import classify, detect_language, extract_page
from steppewatch.models import Article, Listed, Rejection, RejectReason
from steppewatch.registry import Site

SEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "seeds"
SITE = Site(id="t", name="T", country="KZ", languages=["en"], allowed_domains=["t.test"],
            timezone="Asia/Almaty", listings=[{"url": "http://t.test/news/", "article_pattern": r"/news/\d+"}])


def seed(n: int) -> list[str]:
    text = next(SEEDS.glob(f"{n:03d}_*.txt")).read_text("utf-8")
    return [ln for ln in text.splitlines()]


def page(body_html: str, *, head: str = "", around: str = "", og_type: str = "article") -> str:
    return (f'<html lang="en"><head><title>T</title><meta property="og:type" content="{og_type}">{head}</head>'
            f"<body><header><nav><a href='/'>Home</a></nav></header>{around}"
            f"<article>{body_html}</article></body></html>")


def paragraphs(lines: list[str]) -> str:
    return "".join(f"<p>{html.escape(ln)}</p>" for ln in lines if ln.strip())


def test_seed000_latest_news_list_and_byline_stay_out() -> None:
    lines = seed(0)
    title, body = lines[0], lines[1:lines.index("Original Author: Oksana Matvienko")]
    latest = [ln[2:] for ln in lines if ln.startswith("- ")]
    aside = "<aside><h3>Latest news</h3><ul>" + "".join(f"<li><a href='/news/{i}'>{html.escape(h)}</a></li>"
                                                      for i, h in enumerate(latest)) + "</ul></aside>"
    doc = page(f"<h1>{html.escape(title)}</h1>{paragraphs(body)}"
               "<div class='byline'>Original Author: Oksana Matvienko</div>" + aside,
               head='<meta name="author" content="Oksana Matvienko">'
                    '<meta property="article:published_time" content="2024-12-11T09:00:00+05:00">')
    result = extract_page(doc, "http://t.test/news/1", SITE)
    assert isinstance(result, Article), result
    assert result.title == title and result.authors == ["Oksana Matvienko"]
    assert body[0] in result.text and body[-1] in result.text
    for headline in latest + ["Latest news", "Original Author: Oksana Matvienko"]:
        assert headline not in result.text
    assert result.published == "2024-12-11T09:00:00+05:00" and result.date_source == "page"


def test_seed003_ad_markers_are_removed() -> None:
    lines = [ln for ln in seed(3) if ln.strip()]
    doc = page("<h1>Putin to visit Kazakhstan</h1>" + paragraphs(lines))
    result = extract_page(doc, "http://t.test/news/3", SITE)
    assert isinstance(result, Article)
    for marker in ("[ad_1]", "[ad_2]", "Source link"):
        assert marker not in result.text
    assert lines[1] in result.text and lines[-3] in result.text


def test_seed004_search_page_is_not_an_article() -> None:
    lines = [ln for ln in seed(4) if ln.strip()]
    ticker = "<div class='ticker'><ul>" + "".join(f"<li>{html.escape(ln.strip())}</li>" for ln in lines if "/USD" in ln) + "</ul></div>"
    teasers = []
    for n, (head, text) in enumerate([(lines[42], lines[43]), (lines[44], lines[45]), (lines[46], lines[47])]):
        teasers.append(f"<div class='result'><h2><a href='/news/{n + 10}'>{html.escape(head)}</a></h2><p>{html.escape(text)}</p></div>")
    doc = (f"<html><head><title>Search</title></head><body>{ticker}<p>Viewing results 1 - 6 of 3</p>"
           f"{''.join(teasers)}</body></html>")
    result = extract_page(doc, "http://t.test/?s=astana", SITE)
    assert isinstance(result, Rejection) and result.reason == RejectReason.SEARCH
    result = extract_page(doc, "http://t.test/tag/astana/", SITE)
    assert isinstance(result, Rejection) and result.reason in (RejectReason.LISTING, RejectReason.SEARCH)


@pytest.mark.parametrize(
    ("doc", "status", "ctype", "reason"),
    [
        ("<html><head><title>404 Not Found</title></head><body><h1>Page not found</h1></body></html>", 404, None, RejectReason.ERROR_PAGE),
        ("<html><head><title>Страница не найдена</title></head><body><p>Увы.</p></body></html>", 200, None, RejectReason.ERROR_PAGE),
        ("<html><body><div class=wall><p>We use cookies. Accept all cookies to continue.</p></div></body></html>", 200, None, RejectReason.CONSENT_WALL),
        ("<html><body><article><p>Too short to be news.</p></article></body></html>", 200, None, RejectReason.TOO_SHORT),
        ("", 200, None, RejectReason.NO_CONTENT),
        ("<html><head></head></html>", 200, None, RejectReason.NO_CONTENT),
        ("%PDF-1.4 binary", 200, "application/pdf", RejectReason.NOT_HTML),
    ],
)
def test_non_articles_are_rejected_with_a_reason(doc: str, status: int, ctype: str | None, reason: RejectReason) -> None:
    result = extract_page(doc, "http://t.test/news/9", SITE, status=status, content_type=ctype)
    assert isinstance(result, Rejection) and result.reason == reason


def test_binary_served_as_html_is_rejected() -> None:
    result = extract_page(bytes(range(256)) * 20, "http://t.test/news/9", SITE, content_type="text/html")
    assert isinstance(result, Rejection) and result.reason == RejectReason.NOT_HTML


def test_listed_date_is_used_when_the_page_has_none() -> None:
    from datetime import datetime

    body = paragraphs([f"Sentence number {i} of an undated report about the steppe and its railways." for i in range(12)])
    listed = Listed("feed", "http://t.test/feed", datetime(2024, 12, 3, 5, tzinfo=UTC), "Undated")
    result = extract_page(page("<h1>Undated</h1>" + body), "http://t.test/news/5?utm_source=x", SITE, listed=listed)
    assert isinstance(result, Article)
    assert result.date_source == "feed" and result.published == "2024-12-03T05:00:00+00:00"
    assert result.canonical_url == "http://t.test/news/5"


def test_title_with_markup_and_newlines_is_plain_text() -> None:
    body = paragraphs([f"Line {i} of a report that is long enough to count as an article body today." for i in range(10)])
    doc = page("<h1>Bad\r\nTitle <b>bold</b></h1>" + body).replace('<meta property="og:type"', '<meta x')
    result = extract_page(doc, "http://t.test/news/7", SITE)
    assert isinstance(result, Article) and result.title == "Bad Title bold"


@pytest.mark.parametrize(
    ("text", "lang"),
    [("Президент провёл переговоры с делегацией.", "ru"),
     ("Қазақстан Республикасының үкіметі мәлімдеме жасады.", "kk"),
     ("Oʻzbekiston hukumati yangi qaror qabul qildi va bu haqida maʼlum qildi.", "uz"),
     ("The government of Kazakhstan announced a new policy.", "en")],
)
def test_language_detection(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_classify_accepts_an_article_with_a_sidebar_of_headings() -> None:
    import lxml.html

    sidebar = "<aside>" + "".join(f"<h3><a href='/news/{i}'>Other {i}</a></h3>" for i in range(8)) + "</aside>"
    tree = lxml.html.fromstring(page("<h1>One</h1><p>text</p>", around=sidebar))
    assert classify(tree, "http://t.test/news/1", 200) is None


def test_an_undeclared_article_with_a_long_list_of_other_headlines_keeps_its_body() -> None:
    # no og:type, no JSON-LD, no date: only the text decides; the list of other pages'
    # headlines inside the body's own container is a rail, not a listing
    body = [f"Paragraph {i} of a report on grain exports through the port of Aktau, which rose again this "
            f"autumn as new rail routes opened to the south and east of the country." for i in range(8)]
    rail = [f"Other story number {i} about the region's railways and ports" for i in range(30)]
    doc = ("<html><head><title>Grain</title></head><body><div class=c><h1>Grain exports rise</h1>"
           + paragraphs(body) + "".join(f"<p><a href='/news/{i + 100}'>{h}</a></p>" for i, h in enumerate(rail))
           + "</div></body></html>")
    result = extract_page(doc, "http://t.test/news/77", SITE)
    assert isinstance(result, Article), result
    assert body[0] in result.text and body[-1] in result.text
    assert not set(rail) & set(result.text.splitlines())
    headlines_only = ("<html><head><title>News</title></head><body><div class=c><h1>News</h1>"
                      + "".join(f"<h2><a href='/news/{i + 100}'>{h}</a></h2>" for i, h in enumerate(rail))
                      + "</div></body></html>")
    result = extract_page(headlines_only, "http://t.test/news/", SITE)
    assert isinstance(result, Rejection) and result.reason == RejectReason.LISTING, result


def test_a_page_date_before_the_sites_founding_gives_way_to_the_feed() -> None:
    from datetime import date, datetime

    site = SITE.model_copy(update={"founded": date(2010, 1, 1)})
    body = paragraphs([f"Sentence {i} of a report on the new bridge over the Irtysh river in Pavlodar." for i in range(8)])
    doc = page("<h1>Bridge</h1>" + body, head='<meta property="article:published_time" content="2001-01-01T00:00:00Z">')
    listed = Listed("feed", "http://t.test/feed", datetime(2024, 12, 3, 5, tzinfo=UTC), "Bridge")
    result = extract_page(doc, "http://t.test/news/8", site, listed=listed)
    assert isinstance(result, Article)
    assert result.date_source == "feed" and result.page_dates == []
