"""What a word matches: its keys (candidate lemmas), for the alert matcher.

A query term and a text token match when their key sets intersect. Keys of a word:

* **Cyrillic words**: the normal forms pymorphy3 gives (Russian dictionary; the Ukrainian
  one for words only it knows: Шевченка, Києві). pymorphy3 declines surnames, first names,
  places and organisations (Токаева, в Астане, Казатомпрома), which Snowball cut to
  different stems (Токаев→тока, Токаева→токаев). Words outside the dictionaries (new names,
  transliterations) go through pymorphy3's own guesser, which reads Russian endings
  (-ов/-ев/-ин/-ский surnames in all six cases come out as the nominative). The word itself
  is also a key: pymorphy3 reads some nominative surnames as forms of other words
  (Токаев as the genitive plural of "токай"), and the oblique forms' lemma is then that
  surface form.
* **Proper vs common readings** (the Газа/газ rule): pymorphy3 tags proper nouns
  (Geox, Name, Surn, Patr, Orgn, Trad). A word capitalised inside a sentence is read as
  a proper noun when it has such a parse ("сектора Газа": газа, not газ); a lowercase word
  as a common word when it has a common parse ("поставки газа": газ). A capitalised word at
  the start of a sentence is the proper noun when that is nominative, the common reading is
  not, and the sentence's first verb agrees (``initial_reading``: "Газа осталась без
  света"; not "Газа хватит до весны"). A proper noun's lemma is a key of its own (``^тура``
  the river, ``тура`` the chess piece), so a common word never meets a place or a person
  through a shared spelling. The Ukrainian dictionary tags no places, so a capitalised word
  it reads has its common lemmas as names too. Words no dictionary knows (Kazakh, Uzbek,
  English) are names only when capitalised: "қарорга қарши" (against) is not the city Қарши.
* **Query words** are read by their case in the query: capitalised, the name; lowercase,
  the common word only when a dictionary has the word as a common word's normal form
  (``газ``), else every reading (``токаев``, a surname typed in lower case); a phrase's
  first word and words in capitals, every reading.
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
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any, Literal

Reading = Literal["proper", "common", "initial", "any"]

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


def _grammeme(value: object) -> str | None:
    """A pymorphy3 tag attribute as a plain string (its own type refuses to compare with
    strings it does not know)."""
    return str(value) if value else None


@dataclass(frozen=True)
class Parse:
    """One reading of a word: its normal form, whether it is a proper noun, and its case."""

    lemma: str
    proper: bool
    case: str | None
    number: str | None = None
    gender: str | None = None


def parse(analyzer: Any, word: str) -> list[Any]:
    """pymorphy3's parses of ``word``; none for a word it cannot take. Its shape check asks
    ``unicodedata.name`` of every letter and fails on letters that have no name (Tangut,
    unassigned code points: found by the query-parser property test), so such a word is
    simply unknown, in a query or in an article, never a crash."""
    try:
        return analyzer.parse(word)
    except ValueError:
        return []


@lru_cache(maxsize=200_000)
def _analysis(word: str) -> tuple[tuple[Parse, ...], bool, bool]:
    """(the word's parses, whether a dictionary knows it, whether that dictionary tags places:
    the Ukrainian one does not, so Київ and Харків are common nouns to it). The Russian dictionary first; the
    Ukrainian one for a word only it knows (Шевченка, Харкова, Києва: Ukrainian declension
    that Russian's guesser would read as other words); the Russian guesser for a word neither
    knows, unless it has Ukrainian letters (Kazakh written without its own letters: no guesses)."""
    ru = _analyzer("ru")
    analyzer = ru
    if not ru.word_is_known(word):
        uk = _analyzer("uk")
        if uk.word_is_known(word):
            analyzer = uk
        elif _UKRAINIAN.search(word):
            return (), False, True
    known = analyzer.word_is_known(word)
    parses = tuple(Parse(p.normal_form.replace("ё", "е"), bool(PROPER_TAGS & p.tag.grammemes),
                         _grammeme(p.tag.case), _grammeme(p.tag.number), _grammeme(p.tag.gender))
                   for p in parse(analyzer, word))
    return parses, known, analyzer is ru


def _parses(word: str) -> tuple[tuple[tuple[str, bool], ...], bool, bool]:
    """((normal form, proper noun?) per parse, whether a dictionary knows the word, whether
    it knows it as a common word)."""
    parses, known, _places = _analysis(word)
    pairs = tuple((p.lemma, p.proper) for p in parses)
    return pairs, known, known and any(not proper for _, proper in pairs)


def is_common_lemma(word: str) -> bool:
    """Whether a dictionary knows ``word`` as the normal form of a common word (газ, перо,
    надежда), not only as an inflected form of one: ``токаев`` is only the genitive plural
    of "токай", so a query ``токаев`` is a surname typed in lower case."""
    parses, known, _places = _analysis(fix_homoglyphs(word))
    return known and any(not p.proper and p.lemma == word for p in parses)


PREDICATE_WINDOW = 5  # words after a sentence-initial word searched for its verb
IMPERSONAL = "impersonal"


@lru_cache(maxsize=50_000)
def _predicate(word: str) -> tuple[tuple[str | None, str | None], ...]:
    """(number, gender) of each reading of ``word`` as a finite verb or short form (осталась:
    singular feminine; примет: singular, any gender), empty when it cannot be a predicate."""
    if not _CYRILLIC.search(word) or _KAZAKH_ONLY.search(word):
        return ()
    forms = [p for p in parse(_analyzer("ru"), word) if p.tag.POS in ("VERB", "PRTS", "ADJS")]
    if any("Impe" in p.tag.grammemes for p in forms):  # хватает, хватит: a sentence without a subject
        return ((IMPERSONAL, None),)
    return tuple((_grammeme(p.tag.number), _grammeme(p.tag.gender)) for p in forms)


def _agrees(subject: Parse, predicate: tuple[str | None, str | None]) -> bool:
    number, gender = predicate
    if number == IMPERSONAL:
        return False
    if number and subject.number and number != subject.number:
        return False
    return not (gender and subject.gender and gender != subject.gender)


@lru_cache(maxsize=100_000)
def _subjects(word: str) -> tuple[Parse, ...]:
    """The proper-noun nominative readings of a sentence-initial word, when it has no common
    nominative one (else none: the word keeps every reading)."""
    parses, known, _places = _analysis(fix_homoglyphs(word))
    if not known or any(not p.proper and p.case == "nomn" for p in parses):
        return ()
    return tuple(p for p in parses if p.proper and p.case == "nomn")


def initial_reading(word: str, following: Iterable[str] = ()) -> Reading:
    """How a capitalised word at the start of a sentence is read, given the words after it.

    A sentence most often starts with its subject, so the word is a proper noun when the
    dictionary has it as one in the nominative and has no common reading in the nominative
    ("Газа осталась без света": the place, the fuel would be genitive; "Баку примет", "Перу
    ввело") — unless the sentence's first verb (within ``PREDICATE_WINDOW`` words) cannot
    agree with that nominative ("Газа в хранилищах осталось мало": осталось is neuter, so
    Газа is no subject, and the genitive of the fuel stays) or can be impersonal ("Газа
    хватит до весны"). Otherwise every reading ("Газ
    подорожал", "Надежда Петрова сказала"); words no dictionary knows have every reading.
    """
    subjects = _subjects(word)
    if not subjects:  # almost every word: the words after it are not even looked at
        return "any"
    for after in islice(following, PREDICATE_WINDOW):
        predicate = _predicate(after)
        if predicate:
            fits = any(_agrees(s, p) for s in subjects for p in predicate)
            return "proper" if fits else "any"
    return "proper"


def _cyrillic_keys(word: str, reading: Reading, query: bool) -> set[str]:
    """Keys of a Cyrillic word a dictionary knows (the guesser's readings are in
    ``_unknown_keys``)."""
    tags_places = _analysis(word)[2]
    parses, _known, _common_word = _parses(word)
    if reading == "initial":  # no words after it known: judged on its own
        reading = initial_reading(word)
    proper = {PROPER + lemma for lemma, is_proper in parses if is_proper}
    common = {lemma for lemma, is_proper in parses if not is_proper}
    if reading == "proper" and not tags_places:
        # a capitalised word of a dictionary without place tags: its common lemmas may be the
        # place ("У Києві": Кий the name, or Київ, which it calls a common noun)
        names = proper | {PROPER + lemma for lemma in common} | {PROPER + word}
        return names if query else names | common | {word}
    if reading == "proper" and not proper:
        # capitalised, but known only as a common word: a name the dictionary does not tag
        # (a party, a company, a place named by a common word), so its lemmas are names too.
        # A query word that is no common word's normal form means only the name (``Орал``
        # the city, not "орал", a form of "орать"); one that is (``Нефть``) was capitalised
        # for style and keeps every reading.
        names = {PROPER + lemma for lemma in common} | {PROPER + word}
        if query and not is_common_lemma(word):
            return names
        return names | common | {word}
    if reading == "proper":
        return proper | {PROPER + word}
    if reading == "common" and common:
        return common
    # every reading, and the word itself as a name too: pymorphy3 reads the nominative
    # Токаев as a form of "токай", while its oblique forms have the lemma токаев
    return proper | common | {word, PROPER + word}


def _unknown_keys(word: str) -> set[str]:
    """Keys of a word no dictionary knows: itself and what pymorphy3's guesser makes of it
    when it is Cyrillic without Kazakh letters (every reading: the guesser's tags are
    guesses; Кумтором → кумтор); with Kazakh letters, only the surname of a Russian case
    form (Тоқаева, Әбішевым: Russian text keeps the Kazakh spelling of names). Kazakh
    words' own suffixes go through ``turkic_stems``."""
    keys = {word}
    if _KAZAKH_ONLY.search(word):
        keys.update(PROPER + p.normal_form for p in parse(_analyzer("ru"), word) if "Surn" in p.tag.grammemes)
    else:
        parses, _known, _common = _parses(word)
        keys.update(PROPER + lemma if proper else lemma for lemma, proper in parses)
    return keys


@lru_cache(maxsize=4)
def _stemmer(name: str):  # noqa: ANN202
    import snowballstemmer

    return snowballstemmer.stemmer(name)


@lru_cache(maxsize=400_000)
def word_keys(token: str, reading: Reading = "any", query: bool = False) -> frozenset[str]:
    """The keys of one normalised token (see the module docstring), read as ``reading`` says;
    ``query``: the token is a query word, where a capital means a name and nothing else."""
    token = fix_homoglyphs(token)
    if len(token) <= 2 or not token.isalpha() and "'" not in token:
        return frozenset({token})
    cyrillic = bool(_CYRILLIC.search(token))
    if cyrillic and not _KAZAKH_ONLY.search(token) and _analysis(token)[1]:
        keys = _cyrillic_keys(token, reading, query)
        if query or reading == "common":
            # a query word is a nominative, and a lowercase word no suffixed name: "надежда"
            # is not "надеж" + Uzbek -да (a capitalised one may be: Ташкентке, to Tashkent,
            # is also a Russian word)
            return frozenset(keys)
        return frozenset(keys | {k for stem in turkic_stems(token) for k in (stem, PROPER + stem)})
    # no dictionary knows the word (Kazakh, Kyrgyz, Uzbek, English, new names): its case
    # says whether it may be a name. Lowercase inside a sentence it is not ("қарорга қарши",
    # against; "ақтау", to acquit), and a capitalised query word means only the name
    # (``Qarshi``, ``Ақтау`` the cities).
    plain = _unknown_keys(token) if cyrillic else {token, _stemmer("english").stemWord(token)}
    plain |= set(turkic_stems(token))
    names = {k if k.startswith(PROPER) else PROPER + k for k in plain}
    plain = {k for k in plain if not k.startswith(PROPER)}
    if query and reading == "proper":
        return frozenset(names)
    if reading == "common" and not query:
        return frozenset(plain)
    return frozenset(plain | names)


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
