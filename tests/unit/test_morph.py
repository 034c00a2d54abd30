"""Morphology of alert matching (issue 14): Russian declension of names through pymorphy3,
the guesser for unknown surnames, Kazakh/Kyrgyz/Uzbek suffixes, homoglyphs, the Газа/газ
rule, transliteration, Boolean logic over title + text, and the labelled name table."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from steppewatch.alerts.aliases import DEFAULT_ALIASES
from steppewatch.alerts.morph import fix_homoglyphs, transliterations, turkic_stems
from steppewatch.alerts.query import AliasTable, compile_query
from steppewatch.alerts.rules import Compiled, Rule, RuleSet

ALIASES = AliasTable.from_lists(DEFAULT_ALIASES)
TABLE = yaml.safe_load((Path(__file__).parents[1] / "fixtures" / "alerts_names.yaml").read_text("utf-8"))


def test_name_table_nominative_query_finds_the_six_cases() -> None:
    found, missed = 0, []
    for entry in TABLE["names"]:
        assert len(entry["forms"]) == 6, entry["query"]
        query = compile_query(entry["query"], ALIASES)
        for sentence in entry["forms"]:
            if query.matches(sentence):
                found += 1
            else:
                missed.append((entry["query"], sentence))
    assert len(TABLE["names"]) == 22
    assert found >= 130, missed


def test_name_table_turkic_suffixed_forms() -> None:
    missed = [(e["query"], t) for e in TABLE["suffixed"] for t in e["texts"]
              if not compile_query(e["query"], ALIASES).matches(t)]
    assert missed == []


@pytest.mark.parametrize("kind", ["traps", "reverse_traps"])
def test_name_table_no_proper_common_confusion(kind: str) -> None:
    wrong = [(e["query"], t) for e in TABLE[kind] for t in e["texts"]
             if compile_query(e["query"], ALIASES).matches(t)]
    assert sum(len(e["texts"]) for e in TABLE[kind]) >= 5
    assert wrong == []


# invented surnames, unknown to any dictionary: pymorphy3's guesser reads their endings
INVENTED = {
    "Серикболов": ["Серикболов", "Серикболова", "Серикболову", "Серикболова", "Серикболовым", "Серикболове"],
    "Тлеужанов": ["Тлеужанов", "Тлеужанова", "Тлеужанову", "Тлеужанова", "Тлеужановым", "Тлеужанове"],
    "Кудайбердиев": ["Кудайбердиев", "Кудайбердиева", "Кудайбердиеву", "Кудайбердиева", "Кудайбердиевым",
                     "Кудайбердиеве"],
    "Бекмуратин": ["Бекмуратин", "Бекмуратина", "Бекмуратину", "Бекмуратина", "Бекмуратиным", "Бекмуратине"],
    "Жолдасбековский": ["Жолдасбековский", "Жолдасбековского", "Жолдасбековскому", "Жолдасбековского",
                        "Жолдасбековским", "Жолдасбековском"],
    "Тоқаев": ["Тоқаев", "Тоқаева", "Тоқаеву", "Тоқаева", "Тоқаевым", "Тоқаеве"],  # Kazakh spelling, Russian cases
}


@pytest.mark.parametrize("name", sorted(INVENTED))
def test_unknown_surnames_in_all_six_cases(name: str) -> None:
    query = compile_query(name)
    for form in INVENTED[name]:
        assert query.matches(f"Вчера журналисты говорили с {form} и его коллегами."), form


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("газ", "поставки газа выросли", True),
        ("газ", "удар по сектору Газа", False),  # capitalised inside a sentence: the place
        ("Газа", "в секторе Газа", True),
        ("Газа", "поставки газа", False),  # lowercase: the fuel
        ("тур", "щука в реке Туре", False),  # ^тура (the river) is not тура (the chess piece)
        ("Вена", "у него болят вены на руке", False),
        ("Вена", "конференция в Вене", True),
        ("Астана", "в Астане открылся форум", True),
        ("Казатомпром", "акции Казатомпрома", True),
        ("Kazatomprom AND uranium", "Kazatomprom's uranium output", True),
    ],
)
def test_proper_and_common_readings(query: str, text: str, expected: bool) -> None:
    assert compile_query(query).matches(text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        # a sentence starts with its subject: a nominative proper noun whose common reading
        # would not be nominative is the name, when the verb agrees
        ("газ", "Газа осталась без света.", False),
        ("Газа", "Газа осталась без света.", True),
        ("газ", "Газа снова под обстрелом.", False),
        ("газ", "Газа: перемирие сорвано", False),
        ("бак", "Баку примет климатический саммит.", False),
        ("перо", "Перу ввело режим чрезвычайной ситуации.", False),
        # the verb cannot agree with the place (neuter; impersonal): the fuel
        ("газ", "Газа в хранилищах осталось на две недели.", True),
        ("газ", "Газа хватит до весны.", True),
        # a common nominative: every reading, as before
        ("газ", "Газ подорожал с января.", True),
        ("надежда", "Надежда Петрова возглавила совет.", True),  # a known limit: either may be meant
    ],
)
def test_sentence_initial_words(query: str, text: str, expected: bool) -> None:
    assert compile_query(query).matches(text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        # analysts type names in lower case: a word that is no common word's normal form is
        # read every way (токаев is only the genitive plural of "токай")
        ("токаев", "Указ Токаева опубликован.", True),
        ("токаев", "Встреча с Токаевым продлилась час.", True),
        ("назарбаев", "Библиотека Назарбаева открыла зал.", True),
        ("астана", "Астанада форум өтті.", True),
        # a lowercase common word stays common
        ("газ", "Жители сектора Газа остались без воды.", False),
        ("надежда", "Об этом сообщила Надежда Петрова.", False),
        ("орел", "В Орле открыли мост.", False),
    ],
)
def test_lowercase_query_words(query: str, text: str, expected: bool) -> None:
    assert compile_query(query).matches(text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        # words no dictionary knows: lowercase inside a sentence is no name
        ("Qarshi", "Deputatlar bu qarorga qarshi ovoz berishdi.", False),
        ("Qarshi", "Qarshida yangi bozor ochildi.", True),
        ("Ақтау", "Сот айыпталушыны ақтау туралы шешім шығарды.", False),
        ("Ақтау", "Ақтауда теңіз жағалауы тазартылды.", True),
        ("қарши", "Депутатлар бу қарорга қарши овоз беришди.", True),  # lowercase query: the word
        ("Орал", "Он орал на всю улицу.", False),  # capitalised query: the name, not a form of "орать"
        ("Нефть", "Цены на нефть упали.", True),  # a common word's normal form: the capital is style
        ('"Астанинские переговоры"', "на астанинских переговорах", True),  # a phrase's first word too
        ('"Nuclear power plant"', "a nuclear power plant", True),
    ],
)
def test_case_reads_words_no_dictionary_knows(query: str, text: str, expected: bool) -> None:
    assert compile_query(query).matches(text) is expected


def test_ukrainian_declension() -> None:
    ukrainian = TABLE["ukrainian"]
    missed = [(e["query"], f) for e in ukrainian for f in e["forms"] if not compile_query(e["query"]).matches(f)]
    assert len(ukrainian) >= 7 and missed == []
    assert compile_query("Київ").matches("У Києві пролунали вибухи.")  # ї is a letter, not і with a diaeresis


def test_turkic_suffix_rule() -> None:
    assert turkic_stems("астанада") == ["астана"]
    assert "бишкек" in turkic_stems("бишкекте")
    assert "toshkent" in turkic_stems("toshkentning")
    assert turkic_stems("астанаде") == []  # a front suffix on a back stem is no Kazakh form
    assert turkic_stems("уда") == []  # too little would remain
    assert not compile_query("Алматы").matches("Алматыдеги")  # harmony: ы is back, -деги front


def test_homoglyphs() -> None:
    assert fix_homoglyphs("бiлiм") == "білім"  # Kazakh typed with Latin i
    assert fix_homoglyphs("кaзaхстан") == "казахстан"  # Latin a inside a Cyrillic word
    assert fix_homoglyphs("astanа") == "astana"  # Cyrillic а inside a Latin word
    assert compile_query("Казахстан").matches("Новости Кaзaхстана")
    assert compile_query("білім").matches("Бiлiм және ғылым министрлігі")
    assert compile_query("Astana").matches("Astanа hosts the forum")


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("Kazakhstan", "Казахстан увеличил добычу"),
        ("Kazakhstan", "экспорт Казахстана"),
        ("Tokayev", "Указ Токаева подписан"),
        ("Nazarbayev", "библиотека Назарбаева"),
        ("Mirziyoyev", "визит Мирзиёева"),
        ("Токаев", "Tokayev met the delegation"),
        ("Казахстан", "Kazakhstan's exports"),
    ],
)
def test_transliteration_is_a_rule_option(query: str, text: str) -> None:
    assert compile_query(query, None, transliterate=True).matches(text)
    assert not compile_query(query, None).matches(text)


def test_transliteration_forms() -> None:
    assert "токаев" in transliterations("tokayev")
    assert "мирзиеев" in transliterations("mirziyoyev")
    assert "tokayev" in transliterations("токаев")
    # a transliteration that is a common word matches that word only, not its lemma's forms
    assert not compile_query("gas", None, transliterate=True).matches("свет гаснет")


def _rules(query: str, fields: list[str] | None = None) -> RuleSet:
    rule = Rule(name="r", query=query, recipients=["a@example.org"], **({"fields": fields} if fields else {}))
    return RuleSet([Compiled(rule, compile_query(query))])


@pytest.mark.parametrize(
    ("query", "title", "text", "expected"),
    [
        ("Astana NOT football", "Astana hosts the cup", "The football final is on Sunday.", False),
        ("Astana NOT football", "Football final on Sunday", "Astana hosts the cup.", False),
        ("Astana NOT football", "Astana hosts the forum", "Ministers met on Sunday.", True),
        ("Kazatomprom AND uranium", "Kazatomprom cuts its forecast", "Uranium prices rose.", True),
        ("Kazatomprom AND uranium", "Uranium prices rise", "Kazatomprom cut its forecast.", True),
        ('"Astana talks"', "New round in Astana", "Talks on Syria resume.", False),  # no phrase across fields
    ],
)
def test_boolean_logic_over_the_whole_article(query: str, title: str, text: str, expected: bool) -> None:
    assert bool(_rules(query).matches({"title": title, "text": text})) is expected


def test_fields_title_still_restricts() -> None:
    rules = _rules("Astana NOT football", ["title"])
    assert rules.matches({"title": "Astana hosts the cup", "text": "The football final is on Sunday."})
    assert not _rules("Kazatomprom AND uranium", ["title"]).matches(
        {"title": "Kazatomprom cuts its forecast", "text": "Uranium prices rose."})


def test_snippet_comes_from_the_text_with_the_match_marked() -> None:
    [match] = _rules("Kazatomprom AND uranium").matches(
        {"title": "Kazatomprom cuts its forecast", "text": "Uranium prices rose after the cut."})
    assert "**Uranium**" in match.snippet_text and match.occurrences == 2


@pytest.mark.parametrize("text", [
    "Указ № 15… Подписан указ о переговорах в Астане, сообщает пресс-служба.",
    "Ташкент… В Астане прошли переговоры — «№ 1» в повестке ﬁнансы.",  # ellipsis, numero, ligature
    "STRASSE… Straße: переговоры в Астане продолжатся.",
])
def test_the_snippet_keeps_its_highlight_where_normalisation_changes_lengths(text: str) -> None:
    # NFKC writes "…" as "...", "№" as "No", "ﬁ" as "fi", casefold "ß" as "ss": the highlight
    # is mapped back through each character, not dropped
    [match] = _rules("Астана").matches({"title": "", "text": text})
    assert "**Астане**" in match.snippet_text and "<mark>Астане</mark>" in match.snippet_html
