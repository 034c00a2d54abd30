"""Line-level boilerplate removal: 'read also' paragraphs and teaser lines go, prose stays.

Property tests (hypothesis) build pages from random prose with a 'read also' paragraph or
a rail of headline links to other pages, in the region's languages and in English.
"""

from __future__ import annotations

import html

import lxml.html
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.boilerplate import Furniture
from pipelines.extract import extract_page
from steppewatch.models import Article
from steppewatch.registry import adhoc_site

URL = "https://news.example.kz/ru/politics/2024/12/03/story-5512/"
LABELS = ["Читайте также:", "ЧИТАЙТЕ ТАКЖЕ", "Тағы оқыңыз:", "Shuningdek o'qing:", "Shuningdek oʻqing —",
          "Read also:", "See also:", "Дагы окуңуз:", "По теме:"]
WORDS = ("Токаев встретился с делегацией в Астане и обсудил транзит зерна через порт Актау "
         "Kazakhstan signed an agreement on rail freight with China after talks in Astana "
         "Qozogʻiston bilan savdo hajmi oshdi deb xabar berdi vazirlik matbuot xizmati").split()
sentence = st.lists(st.sampled_from(WORDS), min_size=8, max_size=25).map(lambda w: " ".join(w).capitalize() + ".")
paragraph = st.lists(sentence, min_size=2, max_size=4).map(" ".join)
# a teaser is a headline of 20 characters or more (shorter link texts are labels, not teasers)
headline = st.lists(st.sampled_from(WORDS), min_size=4, max_size=10).map(
    lambda w: " ".join(w).capitalize()).filter(lambda h: len(h) >= 20)


def _page(body: str, rail: str = "") -> str:
    return (f"<html lang=ru><head><title>T</title><meta property='og:type' content='article'>"
            f"<link rel=canonical href='{URL}'></head><body><h1>Заголовок статьи</h1>"
            f"<div class=content>{body}</div><div class=grid>{rail}</div></body></html>")


@settings(max_examples=40, deadline=None)
@given(st.lists(paragraph, min_size=2, max_size=6, unique=True), st.sampled_from(LABELS), headline, st.integers(0, 5),
       st.booleans())
def test_read_also_paragraph_goes_and_every_prose_paragraph_stays(
        paras: list[str], label: str, linked: str, at: int, bold: bool) -> None:
    label_html = f"<strong>{label}</strong>" if bold else label
    read_also = f"<p>{label_html} <a href='/ru/news/other-{at}/'>{html.escape(linked)}</a></p>"
    at = min(at, len(paras))
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paras[:at]) + read_also + "".join(
        f"<p>{html.escape(p)}</p>" for p in paras[at:])
    result = extract_page(_page(body), URL, adhoc_site(URL))
    assert isinstance(result, Article), result
    for p in paras:
        assert p in result.text
    assert label.rstrip(":—").strip().casefold() not in result.text.casefold()
    assert linked not in result.text.splitlines()


@settings(max_examples=40, deadline=None)
@given(st.lists(paragraph, min_size=1, max_size=6), st.lists(headline, min_size=0, max_size=12, unique=True))
def test_cleaning_keeps_every_line_that_is_not_a_link_to_another_page(paras: list[str], teasers: list[str]) -> None:
    # whatever trafilatura hands over, prose lines survive; only other pages' headlines go
    rail = "".join(f"<article class=card><h3><a href='/ru/news/{i}/'>{html.escape(t)}</a></h3></article>"
                   for i, t in enumerate(teasers))
    tree = lxml.html.document_fromstring(_page("".join(f"<p>{html.escape(p)}</p>" for p in paras), rail))
    furniture = Furniture(tree, URL, [URL])
    prose = [p for p in paras if not any(t.casefold() in p.casefold() for t in teasers)]
    kept, dropped = furniture.clean([*paras, *teasers])
    assert all(p in kept for p in prose)
    assert not set(kept) & (set(teasers) - set(prose))
    assert dropped["teaser"] >= len(set(teasers) - set(prose))


def test_a_link_to_the_page_itself_is_not_a_teaser() -> None:
    own = "Токаев провёл переговоры в Астане с президентом Узбекистана"
    tree = lxml.html.document_fromstring(_page("<p>x</p>", f"<h2><a href='{URL}?utm_source=tg'>{own}</a></h2>"))
    kept, _ = Furniture(tree, URL, [URL]).clean([own])
    assert kept == [own]


def test_a_comments_heading_and_the_readers_lines_after_it_go() -> None:
    page = lxml.html.fromstring(
        "<html><body><div class=text><p>Ремонт плотины начнется весной.</p>"
        "<h4>Комментарий эксперта</h4><p>Инженер считает сроки реальными.</p></div>"
        "<div class=reviews><h3>Комментарии (2)</h3><div>Токаеву надо написать.</div>"
        "<div>А Казатомпром тоже в объезд?</div></div></body></html>")
    lines = ["Ремонт плотины начнется весной.", "Комментарий эксперта", "Инженер считает сроки реальными.",
             "Комментарии (2)", "Токаеву надо написать.", "А Казатомпром тоже в объезд?"]
    kept, dropped = Furniture(page, URL, []).clean(lines)
    assert kept == lines[:3] and dropped["comments"] == 3
    # the same words inside a paragraph are no heading: nothing goes
    prose = lxml.html.fromstring("<html><body><p>Текст.</p><p>Комментарии (2) к закону.</p></body></html>")
    assert Furniture(prose, URL, []).clean(["Текст.", "Комментарии (2)", "Ещё текст."])[0] == [
        "Текст.", "Комментарии (2)", "Ещё текст."]
