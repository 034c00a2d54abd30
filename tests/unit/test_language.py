"""Language detection (issue 14): the written sample table, and how a page's declared language
and the detector are reconciled in extraction."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.extract import (
    MIN_LANGUAGE_LETTERS,
    choose_language,
    detect_language,
    extract_page,
)
from steppewatch.models import Article
from steppewatch.registry import Site

SAMPLES = yaml.safe_load((Path(__file__).resolve().parents[1] / "fixtures" / "language_samples.yaml")
                         .read_text("utf-8"))["samples"]
SITE = Site(id="t", name="T", country="KZ", languages=["ru"], allowed_domains=["t.test"],
            timezone="Asia/Almaty", listings=[{"url": "http://t.test/news/", "article_pattern": r"/news/\d+"}])

RUSSIAN = ("Жители села Қарабұлақ пожаловались на перебои с водой уже третью неделю подряд. "
           "В акимате района пообещали восстановить водопровод до конца месяца и привезти "
           "питьевую воду в школы и больницу. Ремонт обойдётся бюджету в сорок миллионов тенге.")
KYRGYZ = ("Бишкек шаарында жаңы мектеп ачылды. Мектепте 1200 окуучу билим алат. Шаардын мэри "
          "салтанатка катышып, мугалимдерди куттуктады. Быйыл борбор калаада дагы беш мектептин "
          "курулушу аяктайт деп күтүлүүдө. Мектеп заманбап жабдуулар менен камсыздалган.")
KAZAKH = ("Астанада жаңа мектеп ашылды. Мектепте 1200 оқушы білім алады. Қала әкімі салтанатты "
          "шараға қатысып, ұстаздарды құттықтады. Биыл елорда бойынша тағы бес мектептің құрылысы "
          "аяқталады деп күтілуде. Мектеп заманауи құрал-жабдықтармен толық жабдықталған.")


def test_the_table_is_broad_enough() -> None:
    langs = {s["lang"] for s in SAMPLES}
    assert len(SAMPLES) >= 20
    assert {"ru", "kk", "ky", "uz", "tg", "tk", "en", "uk"} <= langs


@pytest.mark.parametrize("sample", SAMPLES, ids=[s["why"] for s in SAMPLES])
def test_detects_the_samples(sample: dict) -> None:
    assert detect_language(sample["text"]) == sample["lang"]


def test_no_letters_no_language() -> None:
    assert detect_language("") is None
    assert detect_language("2024-12-03 14:05 — 1 200 000 ₸") is None


def test_declared_language_stands_when_the_text_agrees() -> None:
    assert choose_language("ru", RUSSIAN) == "ru"


def test_detector_overrides_a_wrong_declaration() -> None:
    assert choose_language("ru", KYRGYZ) == "ky"
    assert choose_language("kk", RUSSIAN) == "ru"


def test_too_short_text_keeps_the_declared_language() -> None:
    short = "Қасым-Жомарт Тоқаев кездесті."  # Kazakh, under MIN_LANGUAGE_LETTERS letters
    assert sum(c.isalpha() for c in short) < MIN_LANGUAGE_LETTERS
    assert detect_language(short) == "kk"
    assert choose_language("ru", short) == "ru"
    assert choose_language(None, short) == "kk"


def test_declared_language_outside_the_region_list() -> None:
    german = ("Die Regierung Kasachstans hat am Dienstag ein neues Programm zur Förderung der "
              "Landwirtschaft beschlossen, das vor allem kleinen Betrieben helfen soll.")
    assert choose_language("de", german) == "de"  # the full model agrees: kept
    assert choose_language("de", RUSSIAN) == "ru"  # Russian text under a template's lang="de"


def page(lang_attr: str, body: str) -> str:
    paras = f"<p>{body}</p>"
    return (f'<html{lang_attr}><head><title>T</title><meta property="og:type" content="article">'
            '<meta property="article:published_time" content="2024-12-03T10:00:00+06:00"></head>'
            f"<body><article><h1>Жаңы мектеп</h1>{paras}</article></body></html>")


def test_extraction_corrects_a_wrong_declared_language() -> None:
    # a Kyrgyz article on a template that says lang="ru" for every edition
    result = extract_page(page(' lang="ru"', KYRGYZ), "http://t.test/ky/news/1", SITE)
    assert isinstance(result, Article), result
    assert result.language == "ky"


def test_extraction_without_a_declared_language_detects() -> None:
    result = extract_page(page("", RUSSIAN), "http://t.test/news/2", SITE)
    assert isinstance(result, Article), result
    assert result.language == "ru"


@pytest.mark.parametrize(("attr", "want"), [("kz", "kk"), ("kg", "ky"), ("ru-RU", "ru")])
def test_country_codes_declared_as_languages_are_read_as_languages(attr: str, want: str) -> None:
    text = {"kk": "Астанада жаңа мектеп ашылды. " * 8, "ky": KYRGYZ, "ru": RUSSIAN}[want]
    result = extract_page(page(f' lang="{attr}"', text), "http://t.test/news/3", SITE)
    assert isinstance(result, Article), result
    assert result.language == want
