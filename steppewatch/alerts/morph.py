"""What a word matches: its keys (candidate lemmas), for the alert matcher.

A query term and a text token match when their key sets intersect. Keys of a word:

* **Cyrillic words**: the normal forms pymorphy3 gives (Russian dictionary; the Ukrainian
  one for words only it knows). pymorphy3 declines surnames, first names, places and
  organisations (Токаева, в Астане, Казатомпрома), which Snowball cut to different stems
  (Токаев→тока, Токаева→токаев). Words outside the dictionary (new names,
  transliterations) go through pymorphy3's own guesser, which reads Russian endings
  (-ов/-ев/-ин/-ский surnames in all six cases come out as the nominative). The word itself
  is also a key: pymorphy3 reads some nominative surnames as forms of other words
  (Токаев as the genitive plural of "токай"), and the oblique forms' lemma is then that
  surface form.
* **Proper vs common readings** (the Газа/газ rule): pymorphy3 tags proper nouns
  (Geox, Name, Surn, Patr, Orgn, Trad). A word capitalised inside a sentence is read as
  a proper noun when it has such a parse ("сектора Газа": газа, not газ); a lowercase word
  as a common word when it has a common parse ("поставки газа": газ). A query term is
  read the same way by its case in the query (``газ`` the fuel, ``Газа`` the place).
  Sentence-initial and all-capital words keep every reading: their case says nothing.
  A proper noun's lemma is a key of its own (``^тура`` the river, ``тура`` the chess
  piece), so a common word never meets a place or a person through a shared spelling.
  Words no dictionary knows keep every reading: the guesser's tags are guesses.
* **Latin words**: the Snowball English stem, and the word itself.
* **Kazakh, Kyrgyz and Uzbek case suffixes** (``turkic_stems``): Астанада, Бишкекте,
  Toshkentga also give the name without its suffix, when at least ``MIN_TURKIC_STEM``
  letters remain and the vowels agree (front/back harmony) where the suffix harmonises.
* **Transliteration** (``transliterations``, per rule): a Latin word also matches its
  Cyrillic transliterations and a Cyrillic word its Latin ones (Tokayev = Токаев).

Everything is cached per word (``lru_cache``): news vocabulary is Zipfian, so almost
every token of an article was analysed before.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

Reading = Literal["proper", "common", "any"]

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-z]")
_KAZAKH_ONLY = re.compile("[әғқңөұүһ]")  # letters no Russian or Ukrainian word has
_UKRAINIAN = re.compile("[іїєґ]")
PROPER_TAGS = frozenset({"Geox", "Name", "Surn", "Patr", "Orgn", "Trad"})

# -- homoglyphs ---------------------------------------------------------------------------
# Latin letters that look like Cyrillic ones (lowercase: tokens are case-folded). Latin i is
# Kazakh/Ukrainian і: Kazakh is often typed on a Russian layout with Latin i for і.
_LAT_TO_CYR = str.maketrans("aceiopxykhmtb", "асеіорхукһмтв")
_CYR_TO_LAT = str.maketrans("асеіорхукмтвһ", "aceiopxykmtbh")
_LAT_LOOKALIKE = set("aceiopxykhmtb")
_CYR_LOOKALIKE = set("асеіорхукмтвһ")


def fix_homoglyphs(token: str) -> str:
    """A token mixing scripts written in one: look-alike letters take the script of the word.

    The word's script is the one with a letter that has no look-alike (Бiлiм: б, л, м are
    Cyrillic only, so i→і); when every letter has a look-alike, the majority's.
    """
    if not (_CYRILLIC.search(token) and _LATIN.search(token)):
        return token
    cyr_only = any(_CYRILLIC.match(c) and c not in _CYR_LOOKALIKE for c in token)
    lat_only = any("a" <= c <= "z" and c not in _LAT_LOOKALIKE for c in token)
    if cyr_only == lat_only:  # both (a real mix) or neither: the majority decides
        cyrillic = sum(1 for c in token if _CYRILLIC.match(c)) >= sum(1 for c in token if "a" <= c <= "z")
    else:
        cyrillic = cyr_only
    return token.translate(_LAT_TO_CYR if cyrillic else _CYR_TO_LAT)


# -- pymorphy3 ----------------------------------------------------------------------------
@lru_cache(maxsize=2)
def _analyzer(lang: str):  # noqa: ANN202 (pymorphy3 has no type stubs)
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang=lang)


PROPER = "^"  # marks a proper noun's lemma: the place Газа ("^газа") is not a form of газ


@lru_cache(maxsize=200_000)
def _parses(word: str) -> tuple[tuple[tuple[str, bool], ...], bool, bool]:
    """((normal form, proper noun?) per parse, whether a dictionary knows the word, whether
    it knows it as a common word)."""
    ru = _analyzer("ru")
    analyzer = ru
    if _UKRAINIAN.search(word) and not ru.word_is_known(word):
        uk = _analyzer("uk")
        if not uk.word_is_known(word):
            return (), False, False  # Kazakh written without its own letters, or unknown: no guesses
        analyzer = uk
    known = analyzer.word_is_known(word)
    parses = tuple((p.normal_form.replace("ё", "е"), bool(PROPER_TAGS & p.tag.grammemes))
                   for p in analyzer.parse(word))
    return parses, known, known and any(not proper for _, proper in parses)


def _cyrillic_keys(word: str, reading: Reading) -> set[str]:
    parses, known, common_word = _parses(word)
    proper = {PROPER + lemma for lemma, is_proper in parses if is_proper}
    common = {lemma for lemma, is_proper in parses if not is_proper}
    if not known:  # the guesser's tags are guesses: every reading (Кумтором → кумтор)
        keys = proper | common
    elif reading == "proper" and proper:
        keys = proper
    elif reading == "common" and common:
        keys = common
    else:
        keys = proper | common
    # the word itself, as a name too: pymorphy3 reads the nominative Токаев as a form of
    # "токай", while its oblique forms have the lemma токаев. Not against its reading:
    # "газа" in lowercase is only the fuel, "Вена" capitalised only the city.
    if known and reading == "proper" and proper:
        keys.add(PROPER + word)
    elif not (known and reading == "common" and common_word):
        keys |= {word, PROPER + word}
    return keys


def _kazakh_keys(word: str) -> set[str]:
    """A word with Kazakh letters: itself and, when it is a surname in a Russian case form
    (Тоқаева, Әбішевым: Russian text keeps the Kazakh spelling of names), the surname as
    pymorphy3's guesser reads it. Kazakh words' own suffixes go through ``turkic_stems``."""
    keys = {word, PROPER + word}
    keys.update(PROPER + p.normal_form for p in _analyzer("ru").parse(word) if "Surn" in p.tag.grammemes)
    return keys


@lru_cache(maxsize=4)
def _stemmer(name: str):  # noqa: ANN202
    import snowballstemmer

    return snowballstemmer.stemmer(name)


@lru_cache(maxsize=400_000)
def word_keys(token: str, reading: Reading = "any") -> frozenset[str]:
    """The keys of one normalised token (see the module docstring)."""
    token = fix_homoglyphs(token)
    if len(token) <= 2 or not token.isalpha() and "'" not in token:
        return frozenset({token})
    if _CYRILLIC.search(token):
        keys = _kazakh_keys(token) if _KAZAKH_ONLY.search(token) else _cyrillic_keys(token, reading)
    else:
        keys = {token, _stemmer("english").stemWord(token)}
    for stem in turkic_stems(token):  # a name, mostly: read both ways
        keys |= {stem, PROPER + stem}
    return frozenset(keys)


# -- Kazakh, Kyrgyz, Uzbek case suffixes ----------------------------------------------------
MIN_TURKIC_STEM = 4
_FRONT = set("еәөүіэ")
_BACK = set("аоұыя")
# Kazakh and Kyrgyz suffixes harmonise with the stem's last vowel (front/back); Uzbek ones
# do not, so the Uzbek forms (Cyrillic and Latin) are accepted after any stem.
_HARMONIC = (
    # locative, locative-attributive, ablative
    "да де та те до дө то тө дағы дегі тағы тегі дан ден тан тен нан нен дон дөн тон төн нон нөн "
    # dative
    "ға ге қа ке га го гө ко кө на не "
    # genitive, accusative
    "ның нің дың дің тың тің нын нин нун нүн дын дин дун дүн тын тин тун түн ны ні ды ді ты ті ну нү ду дү ту тү "
    # instrumental (Kazakh)
    "мен бен пен"
).split()
_UZBEK = "да га ка қа дан ни нинг даги da ga ka qa dan ni ning dagi gacha"  # Uzbek Cyrillic and Latin
_UZBEK_SET = set(_UZBEK.split())
_SUFFIXES = sorted(set(_HARMONIC) | _UZBEK_SET, key=len, reverse=True)


def _harmony(text: str) -> str | None:
    for c in reversed(text):
        if c in _FRONT:
            return "front"
        if c in _BACK:
            return "back"
    return None


def turkic_stems(token: str) -> list[str]:
    """The token without a Kazakh/Kyrgyz/Uzbek case suffix, for every suffix it may carry.

    At least ``MIN_TURKIC_STEM`` letters must remain; a Kazakh/Kyrgyz suffix must agree with
    the stem's last vowel (Астанада, Бишкекте; not Астанаде), and only a stem a query names
    is ever compared, so a Russian word that happens to end in -да finds nothing extra.
    """
    out = []
    for suffix in _SUFFIXES:
        if not token.endswith(suffix) or len(token) - len(suffix) < MIN_TURKIC_STEM:
            continue
        stem = token[: -len(suffix)]
        if suffix not in _UZBEK_SET:
            stem_vowels, suffix_vowels = _harmony(stem), _harmony(suffix)
            if stem_vowels and suffix_vowels and stem_vowels != suffix_vowels:
                continue
        out.append(stem)
    return out


# -- transliteration ------------------------------------------------------------------------
# Latin to Cyrillic: the digraphs of the usual romanisations (BGN/PCGN, passports, English-
# language press) first; ambiguous letters give every reading (y: й or ы; e: е or э).
_LAT_DIGRAPHS = [("shch", ["щ"]), ("kh", ["х"]), ("zh", ["ж"]), ("ts", ["ц", "тс"]), ("ch", ["ч"]),
                 ("sh", ["ш"]), ("ya", ["я"]), ("yu", ["ю"]), ("yo", ["е"]), ("ye", ["е"]),
                 ("q", ["қ", "к"]), ("gh", ["ғ", "г"]), ("o'", ["ў", "о"]), ("g'", ["ғ", "г"])]
_LAT_LETTERS = {"a": ["а"], "b": ["б"], "c": ["ц", "к"], "d": ["д"], "e": ["е", "э"], "f": ["ф"], "g": ["г"],
                "h": ["х"], "i": ["и", "ы"], "j": ["дж", "ж"], "k": ["к"], "l": ["л"], "m": ["м"], "n": ["н"],
                "o": ["о"], "p": ["п"], "r": ["р"], "s": ["с"], "t": ["т"], "u": ["у"], "v": ["в"],
                "w": ["в"], "x": ["кс"], "y": ["й", "ы"], "z": ["з"], "'": [""]}
_CYR_LETTERS = {"а": ["a"], "б": ["b"], "в": ["v"], "г": ["g"], "д": ["d"], "е": ["e", "ye", "yo"], "ж": ["zh"],
                "з": ["z"], "и": ["i"], "й": ["y", "i"], "к": ["k"], "л": ["l"], "м": ["m"], "н": ["n"],
                "о": ["o"], "п": ["p"], "р": ["r"], "с": ["s"], "т": ["t"], "у": ["u"], "ф": ["f"],
                "х": ["kh", "h"], "ц": ["ts"], "ч": ["ch"], "ш": ["sh"], "щ": ["shch"], "ъ": [""], "ы": ["y"],
                "ь": [""], "э": ["e"], "ю": ["yu"], "я": ["ya"], "ә": ["a"], "ғ": ["gh", "g"], "қ": ["q", "k"],
                "ң": ["ng"], "ө": ["o"], "ұ": ["u"], "ү": ["u"], "һ": ["h"], "і": ["i"], "ў": ["o'"]}
MAX_TRANSLITERATIONS = 32


def transliterations(token: str) -> list[str]:
    """Standard transliterations of a token into the other script (Latin ↔ Cyrillic), the
    first reading of every letter first, at most ``MAX_TRANSLITERATIONS``."""
    units: list[list[str]] = []
    if _CYRILLIC.search(token):
        units = [_CYR_LETTERS.get(c, [c]) for c in token]
    else:
        i = 0
        while i < len(token):
            for digraph, outs in _LAT_DIGRAPHS:
                if token.startswith(digraph, i):
                    units.append(outs)
                    i += len(digraph)
                    break
            else:
                units.append(_LAT_LETTERS.get(token[i], [token[i]]))
                i += 1
    forms = [""]
    for alternatives in units:
        forms = [form + alt for form in forms for alt in alternatives][:MAX_TRANSLITERATIONS]
    return list(dict.fromkeys(forms))


def transliterated_keys(token: str) -> frozenset[str]:
    """Keys a transliterated query word adds: each transliteration and, when it is a name
    pymorphy3 knows or guesses, that name's lemma (so "Tokayev" finds "Токаева").

    Only proper-noun lemmas are taken: a transliteration that happens to be a common word
    ("gas" → "гас") matches that exact word only."""
    keys: set[str] = set()
    for form in transliterations(token):
        keys.add(form)
        if _CYRILLIC.search(form) and not _KAZAKH_ONLY.search(form) and len(form) > 2:
            keys.add(PROPER + form)
            keys.update(PROPER + lemma for lemma, proper in _parses(form)[0] if proper)
        elif not _CYRILLIC.search(form):
            keys.add(_stemmer("english").stemWord(form))
    return frozenset(keys)
