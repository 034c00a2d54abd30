"""The alert query language and its matcher.

Syntax, as alert-service users know it (Talkwalker, Google Alerts):

    "Astana talks" OR ("переговоры" NEAR/3 Астан*) -football
    quoted phrases, AND (also implicit between terms), OR, NOT and -term, parentheses,
    a NEAR/n b (at most n words apart, either order), trailing * wildcard (3+ letters)

Matching works on tokens, never on regular expressions, so no query can backtrack:
text is normalised (NFKC, case-folded, accents and combining marks dropped, ё→е,
every Uzbek/Kazakh apostrophe variant unified) and split on Unicode word boundaries.
A term matches a token when they share a key (``morph.py``): a lemma from pymorphy3
for Cyrillic words (so "Токаев" finds "Указ Токаева" and "Астанинские переговоры" finds
"астанинских переговорах"), the Snowball English stem for Latin ones, a Kazakh/Kyrgyz/
Uzbek name without its case suffix (Астанада, Toshkentga), the word itself; a term's case
in the query chooses between a proper and a common reading ("Газа" the place, "газ" the
fuel), as a token's case in the text does. Mixed-script homoglyphs are read in the word's
script, and a rule may add transliterations (Tokayev = Токаев).
Aliases (``steppewatch/alerts/aliases.py``) expand a word or phrase into every name of
the same place or process: with them, "Astana talks" also finds "Nur-Sultan talks".
Phrases are matched by simulating all alternatives at once (a set of positions per
step), so aliases of several words cost no backtracking either.

A text is analysed once (``Doc``: tokens, their keys, where each key occurs) and every query
is evaluated on that: a phrase is tried only where its first word occurs, and a rule set
skips the rules none of whose ``anchors`` (terms a match cannot do without) occur.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from steppewatch.alerts.morph import (
    PREDICATE_WINDOW,
    Reading,
    initial_reading,
    is_common_lemma,
    transliterated_keys,
    word_keys,
)

_APOSTROPHES = "'ʻʼ‘’`´ʹ′＇"
_APOS_RE = re.compile(f"[{re.escape(_APOSTROPHES)}]")
_TOKEN = re.compile(r"\w+(?:'\w+)*", re.UNICODE)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
MIN_WILDCARD_PREFIX = 3
MAX_QUERY_LENGTH = 2000
MAX_NEAR = 50


class QuerySyntaxError(ValueError):
    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"position {position}: {message}")
        self.position = position
        self.reason = message


def normalise(text: str) -> str:
    return _normalise(text, fold=True)


def _normalise(text: str, fold: bool) -> str:
    text = unicodedata.normalize("NFKC", text)
    if fold:
        text = text.casefold()
    text = _APOS_RE.sub("'", text)
    decomposed = unicodedata.normalize("NFD", text)
    # drop accents, but keep the letters that are letters of their own (й, ё→е handled below)
    if "\u0306" in decomposed:  # й and Uzbek ў are letters, not accented
        decomposed = decomposed.replace("и\u0306", "й").replace("у\u0306", "ў")
    if "\u0308" in decomposed:  # so is Ukrainian ї (Київ is not "Кіів"); ё is read as е below
        decomposed = decomposed.replace("і\u0308", "ї").replace("І\u0308", "Ї")
    if "\u0306" in decomposed or _ASTRAL.search(decomposed):  # rare: a breve elsewhere, marks beyond the BMP
        stripped = _strip_marks_slowly(decomposed)
    else:
        stripped = _marks().sub("", decomposed)  # one pass in C, not a Python step per character
    return unicodedata.normalize("NFC", stripped).replace("ё", "е").replace("Ё", "Е")


def _strip_marks_slowly(decomposed: str) -> str:
    kept: list[str] = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            base = kept[-1] if kept else ""
            if ch == "\u0306" and base in ("и", "у"):
                kept[-1] = {"и": "й", "у": "ў"}[base]
            continue
        kept.append(ch)
    return "".join(kept)


@lru_cache(maxsize=1)
def _marks() -> re.Pattern[str]:
    """Runs of combining marks (``unicodedata.combining`` > 0) of the Basic Multilingual Plane."""
    ranges: list[list[int]] = []
    for code in range(0x10000):
        if unicodedata.combining(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return re.compile("[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(normalise(text))


def token_spans(text: str) -> list[tuple[int, int]] | None:
    """Where each token of ``tokenize(text)`` lies in ``text`` itself (character offsets),
    for highlighting; None if the text's normalisation cannot be traced character by
    character.

    Normalisation changes lengths ("…" becomes "...", "№" "No", "ß" "ss"), so the offsets
    are mapped back through the normalisation of each character in turn.
    """
    pieces = [normalise(char) for char in text]
    folded = "".join(pieces)
    if folded != normalise(text):  # a normalisation that depends on neighbours: no map
        return None
    origin: list[int] = []
    for index, piece in enumerate(pieces):
        origin.extend([index] * len(piece))
    origin.append(len(text))
    return [(origin[m.start()], origin[m.end() - 1] + 1) for m in _TOKEN.finditer(folded)]


_SENTENCE_END = re.compile(r"[.!?…\n]")
_CLAUSE_END = re.compile(r"[.!?…\n:;—–]")  # a headline's "Газа: перемирие сорвано" is two clauses


def readings(text: str, count: int) -> list[Reading]:
    """How each of the ``count`` tokens of ``text`` is to be read, from its case in the text.

    Capitalised inside a sentence: a proper noun when it can be one ("сектора Газа");
    lowercase: a common word when it can be one; capitalised at the start of a sentence:
    as ``morph.initial_reading`` judges from the words after it ("Газа осталась без света":
    the place); all capitals or anything else: every reading. When the uncased tokens do
    not line up with the folded ones (case folding that changes a word's length), every
    token keeps every reading.
    """
    cased = _normalise(text, fold=False)
    found: list[Reading] = []
    matches = list(_TOKEN.finditer(cased))

    def following(i: int) -> Iterator[str]:  # the words after token i, in its clause (read lazily)
        for after in matches[i + 1:i + 1 + PREDICATE_WINDOW]:
            if _CLAUSE_END.search(cased, matches[i].end(), after.start()):
                return
            yield after.group().casefold()

    previous_end = 0
    for i, m in enumerate(matches):
        word = m.group()
        if previous_end == 0 and not found or _SENTENCE_END.search(cased, previous_end, m.start()):
            if word[0].isupper() and not word.isupper():
                found.append(initial_reading(word.casefold(), following(i)))
            else:
                found.append("any")
        elif word[0].isupper() and not word.isupper():
            found.append("proper")
        elif word[0].islower():
            found.append("common")
        else:
            found.append("any")
        previous_end = m.end()
    return found if len(found) == count else ["any"] * count


def keys(token: str, reading: Reading = "any") -> frozenset[str]:
    """What a token matches (``morph.word_keys``, cached per word and reading)."""
    return word_keys(token, reading)


# -- AST ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """One word: matched by a shared key (``morph.py``), or by prefix when it ends with *.

    ``reading`` is the term's case in the query (``Газа`` proper, ``газ`` common);
    ``transliterate`` adds the keys of its transliterations into the other script.
    """

    text: str
    wildcard: bool = False
    reading: Reading = "any"
    transliterate: bool = False
    keys: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)  # computed once

    def __post_init__(self) -> None:
        if self.wildcard:
            found = frozenset({self.text})
        else:
            found = word_keys(self.text, self.reading, query=True)
            if self.transliterate:
                found |= transliterated_keys(self.text)
        object.__setattr__(self, "keys", found)

    def matches(self, token: str, token_keys: frozenset[str]) -> bool:
        if self.wildcard:
            return token.startswith(self.text)
        return not self.keys.isdisjoint(token_keys)

    def positions(self, doc: Doc) -> list[int]:
        """Sorted positions of the tokens this term matches."""
        if self.wildcard:
            return doc.prefixed(self.text)
        found = [where for key in self.keys if (where := doc.by_key.get(key))]
        if len(found) <= 1:
            return found[0] if found else _NOWHERE
        return sorted({p for where in found for p in where})


_NOWHERE: list[int] = []


@dataclass(frozen=True)
class Phrase:
    """A sequence of slots; each slot is a set of alternatives, each a sequence of terms."""

    slots: tuple[tuple[tuple[Term, ...], ...], ...]
    source: str = ""
    # the first word of each alternative of the first slot; whether every alternative is one word
    first: tuple[Term, ...] | None = field(default=None, init=False, repr=False, compare=False)
    one_word: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.slots and all(self.slots[0]):
            object.__setattr__(self, "first", tuple(alt[0] for alt in self.slots[0]))
            object.__setattr__(self, "one_word", len(self.slots) == 1 and all(len(a) == 1 for a in self.slots[0]))

    def spans(self, doc: Doc) -> list[tuple[int, int]]:
        """(start, end) token spans where the phrase occurs.

        Only the positions where a first word occurs are tried, from the document's index.
        """
        if self.first is None:  # no slots, or an empty alternative: it matches at every token
            starts: Iterable[int] = range(len(doc.tokens))
        else:
            found_first = [where for where in (term.positions(doc) for term in self.first) if where]
            if not found_first:
                return []
            starts = found_first[0] if len(found_first) == 1 else sorted({p for w in found_first for p in w})
        if self.one_word:
            return [(start, start + 1) for start in starts]
        found = []
        n = len(doc.tokens)
        for start in starts:
            positions = {start}
            for slot in self.slots:
                nxt = set()
                for pos in positions:
                    for alt in slot:
                        end = pos + len(alt)
                        if end <= n and all(t.matches(doc.tokens[pos + i], doc.keys[pos + i])
                                            for i, t in enumerate(alt)):
                            nxt.add(end)
                positions = nxt
                if not positions:
                    break
            if positions:
                found.append((start, max(positions)))
        return found


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


@dataclass(frozen=True)
class Near:
    left: Node
    right: Node
    distance: int


Node = Phrase | And | Or | Not | Near
_Term = Term


SEPARATOR = "\x00"  # between the fields of one document: no term matches it, no phrase spans it


@dataclass
class Doc:
    """A text analysed once, for every query: its tokens, their keys and where each key occurs.

    ``keys[i]`` is ``keys(tokens[i], reading)`` (computed when not given, every reading
    when the case is unknown). Prefixes (``word*``) are looked up in the sorted distinct
    tokens, sorted on the first wildcard.
    """

    tokens: list[str]
    keys: list[frozenset[str]] = field(default_factory=list)
    by_key: dict[str, list[int]] = field(init=False, repr=False, compare=False)
    _by_token: dict[str, list[int]] | None = field(default=None, init=False, repr=False, compare=False)
    _vocabulary: list[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.tokens):
            self.keys = list(map(keys, self.tokens))
        by_key: dict[str, list[int]] = {}
        for i, token_keys in enumerate(self.keys):
            for key in token_keys:
                where = by_key.get(key)
                if where is None:
                    by_key[key] = [i]
                else:
                    where.append(i)
        self.by_key = by_key

    @classmethod
    def of(cls, text: str) -> Doc:
        tokens = tokenize(text)
        return cls(tokens, list(map(keys, tokens, readings(text, len(tokens)))))

    @classmethod
    def joined(cls, docs: Sequence[Doc]) -> Doc:
        """One document of several fields (title, text), a separator token between them, so
        Boolean logic sees the whole article and no phrase or NEAR/0 spans two fields."""
        tokens: list[str] = []
        token_keys: list[frozenset[str]] = []
        for i, doc in enumerate(docs):
            if i:
                tokens.append(SEPARATOR)
                token_keys.append(frozenset())
            tokens += doc.tokens
            token_keys += doc.keys
        return cls(tokens, token_keys)

    def has_prefix(self, prefix: str) -> bool:
        """Whether a token starts with ``prefix``."""
        if self._vocabulary is None:
            self._vocabulary = sorted(set(self.tokens))
        i = bisect_left(self._vocabulary, prefix)
        return i < len(self._vocabulary) and self._vocabulary[i].startswith(prefix)

    def prefixed(self, prefix: str) -> list[int]:
        """Sorted positions of the tokens that start with ``prefix``."""
        if not self.has_prefix(prefix):
            return _NOWHERE
        if self._by_token is None:
            self._by_token = {}
            for i, token in enumerate(self.tokens):
                self._by_token.setdefault(token, []).append(i)
        assert self._vocabulary is not None
        vocabulary = self._vocabulary
        i = bisect_left(vocabulary, prefix)
        hits = []
        while i < len(vocabulary) and vocabulary[i].startswith(prefix):
            hits.append(self._by_token[vocabulary[i]])
            i += 1
        return hits[0] if len(hits) == 1 else sorted(p for where in hits for p in where)


# -- parser -----------------------------------------------------------------------------
_LEX = re.compile(
    r'\s*(?:(?P<phrase>"[^"]*"?)|(?P<lpar>\()|(?P<rpar>\))|(?P<near>NEAR/(?P<n>\d+))'
    r"|(?P<op>AND|OR|NOT)(?=[\s()\"]|$)|(?P<minus>-)(?=[^\s])|(?P<word>[^\s()\"]+))"
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    value: str
    pos: int


def _lex(query: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        m = _LEX.match(query, pos)
        if not m or m.end() == pos:
            raise QuerySyntaxError(f"unexpected character {query[pos]!r}", pos)
        start = m.start(m.lastgroup) if m.lastgroup else pos
        kind = m.lastgroup if m.lastgroup != "n" else "near"
        value = m.group(kind) if kind != "near" else m.group("n")
        if kind == "phrase" and (len(value) < 2 or not value.endswith('"')):
            raise QuerySyntaxError("unterminated quoted phrase", start)
        out.append(_Tok(kind, value, start))
        pos = m.end()
    return out


class Parser:
    """Recursive descent: or_expr := and_expr (OR and_expr)*; and_expr := unary (AND? unary)*."""

    def __init__(self, query: str, aliases: AliasTable | None, transliterate: bool = False) -> None:
        if len(query) > MAX_QUERY_LENGTH:
            raise QuerySyntaxError(f"query longer than {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH)
        self.query = query
        self.toks = _lex(query)
        self.i = 0
        self.aliases = aliases
        self.transliterate = transliterate

    def parse(self) -> Node:
        if not self.toks:
            raise QuerySyntaxError("empty query", 0)
        node = self._or()
        if self.i < len(self.toks):
            tok = self.toks[self.i]
            raise QuerySyntaxError(f"unexpected {tok.value!r}", tok.pos)
        if _only_negative(node):
            raise QuerySyntaxError("a query needs at least one term that is not negated", 0)
        return node

    def _peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _or(self) -> Node:
        parts = [self._and()]
        while (tok := self._peek()) and tok.kind == "op" and tok.value == "OR":
            self.i += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def _and(self) -> Node:
        parts = [self._near()]
        while (tok := self._peek()) and not (tok.kind == "rpar" or (tok.kind == "op" and tok.value == "OR")):
            if tok.kind == "op" and tok.value == "AND":
                self.i += 1
            parts.append(self._near())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _near(self) -> Node:
        left = self._unary()
        while (tok := self._peek()) and tok.kind == "near":
            distance = int(tok.value)
            if distance > MAX_NEAR:
                raise QuerySyntaxError(f"NEAR/{distance}: at most NEAR/{MAX_NEAR}", tok.pos)
            self.i += 1
            right = self._unary()
            if isinstance(left, Not) or isinstance(right, Not):
                raise QuerySyntaxError("NEAR cannot take a negated operand", tok.pos)
            left = Near(left, right, distance)
        return left

    def _unary(self) -> Node:
        tok = self._peek()
        if tok is None:
            raise QuerySyntaxError("expected a term, found the end of the query", len(self.query))
        if tok.kind == "minus" or (tok.kind == "op" and tok.value == "NOT"):
            self.i += 1
            return Not(self._unary())
        if tok.kind == "lpar":
            self.i += 1
            node = self._or()
            close = self._peek()
            if close is None or close.kind != "rpar":
                raise QuerySyntaxError("missing ')'", close.pos if close else len(self.query))
            self.i += 1
            return node
        if tok.kind == "phrase":
            self.i += 1
            return self._phrase(tok.value[1:-1], tok.pos)
        if tok.kind == "word":
            self.i += 1
            return self._phrase(tok.value, tok.pos)
        raise QuerySyntaxError(f"unexpected {tok.value!r}", tok.pos)

    def _phrase(self, text: str, pos: int) -> Phrase | Or:
        words = text.split()
        terms: list[Term] = []
        for word in words:
            wildcard = word.endswith("*")
            core = word.rstrip("*")
            if "*" in core:
                raise QuerySyntaxError("'*' is allowed only at the end of a word", pos)
            tokens = tokenize(core)
            if wildcard:
                if len(tokens) != 1 or len(tokens[0]) < MIN_WILDCARD_PREFIX:
                    raise QuerySyntaxError(
                        f"a wildcard needs at least {MIN_WILDCARD_PREFIX} letters before '*'", pos)
                terms.append(Term(tokens[0], wildcard=True))
            else:
                found = _query_readings(core, len(tokens))
                if not terms and len(words) > 1 and found and found[0] == "proper":
                    # a phrase's first word is capitalised as a sentence's is ("Астанинские
                    # переговоры", "Nuclear power plant"): its case says nothing
                    found[0] = "any"
                terms.extend(Term(t, reading=r, transliterate=self.transliterate)
                             for t, r in zip(tokens, found, strict=True))
        if not terms:
            raise QuerySyntaxError("empty phrase", pos)
        return phrase_with_aliases(terms, self.aliases, text)


def _query_readings(word: str, count: int) -> list[Reading]:
    """A query word's case says how it is meant: ``Газа`` the place, ``газ`` the fuel; all
    capitals (``TOKAYEV``) say nothing. Lower case means a common word only when a
    dictionary has the word as one in this very form: analysts type names in lower case
    too (``токаев``, ``астана``), and ``токаев`` is no common word's normal form."""
    cased = _TOKEN.findall(_normalise(word, fold=False))
    if len(cased) != count:
        return ["any"] * count
    out: list[Reading] = []
    for w in cased:
        if w[0].isupper() and not w.isupper():
            out.append("proper")
        elif w[0].islower() and is_common_lemma(normalise(w)):
            out.append("common")
        else:
            out.append("any")
    return out


def _only_negative(node: Node) -> bool:
    if isinstance(node, Not):
        return True
    if isinstance(node, And):
        return all(_only_negative(p) for p in node.parts)
    if isinstance(node, Or):
        return any(_only_negative(p) for p in node.parts)
    return False


# -- aliases ------------------------------------------------------------------------------
@dataclass
class AliasTable:
    """Groups of names for the same thing; each name is a token sequence."""

    groups: list[list[tuple[str, ...]]] = field(default_factory=list)

    @classmethod
    def from_lists(cls, groups: Iterable[Sequence[str]]) -> AliasTable:
        table = cls()
        for group in groups:
            names = [tuple(tokenize(name)) for name in group]
            table.groups.append([n for n in names if n])
        return table

    def lookup(self, key: tuple[str, ...]) -> list[tuple[str, ...]] | None:
        """The groups with a name whose words share a key with ``key``'s, word by word."""
        wanted = [keys(t) for t in key]
        alts: list[tuple[str, ...]] = []
        for group in self.groups:
            if any(len(name) == len(wanted)
                   and all(not keys(t).isdisjoint(w) for t, w in zip(name, wanted, strict=True)) for name in group):
                alts.extend(group)
        return alts or None


def phrase_with_aliases(terms: list[Term], aliases: AliasTable | None, source: str) -> Phrase | Or:
    """Expand the whole phrase, then its longest spans, into alias alternatives.

    Alias words are read every way (an alias table is lowercased), with the rule's transliteration.
    """
    if aliases is None or any(t.wildcard for t in terms):
        return Phrase(tuple(((t,),) for t in terms), source)
    translit = any(t.transliterate for t in terms)

    def Term(text: str) -> _Term:  # noqa: N802 (an alias word: the rule's transliteration, any reading)
        return _Term(text, transliterate=translit)

    whole = aliases.lookup(tuple(t.text for t in terms))
    slots: list[tuple[tuple[Term, ...], ...]] = []
    i = 0
    while i < len(terms):
        for j in range(len(terms), i, -1):
            if j - i == len(terms) and whole:
                continue  # the whole phrase is expanded below, as its own alternatives
            alts = aliases.lookup(tuple(t.text for t in terms[i:j]))
            if alts:
                slots.append(tuple(tuple(Term(x) for x in alt) for alt in {*alts, tuple(t.text for t in terms[i:j])}))
                i = j
                break
        else:
            slots.append(((terms[i],),))
            i += 1
    base = Phrase(tuple(slots), source)
    if not whole:
        return base
    others = [Phrase(tuple(((Term(x),),) for x in alt), " ".join(alt)) for alt in whole]
    return Or((base, *others))


# -- evaluation ------------------------------------------------------------------------------
def spans(node: Node, doc: Doc) -> list[tuple[int, int]]:
    """Token spans of the positive matches of a node (empty if it does not match)."""
    if isinstance(node, Phrase):
        return node.spans(doc)
    if isinstance(node, Or):
        return [s for p in node.parts for s in spans(p, doc)]
    if isinstance(node, And):
        collected: list[tuple[int, int]] = []
        for part in node.parts:
            if isinstance(part, Not):
                if spans(part.part, doc):
                    return []
                continue
            found = spans(part, doc)
            if not found:
                return []
            collected.extend(found)
        return collected or [(-1, -1)]
    if isinstance(node, Not):
        return [] if spans(node.part, doc) else [(-1, -1)]
    return _near(spans(node.left, doc), spans(node.right, doc), node.distance)


def anchors(node: Node) -> frozenset[Term] | None:
    """Terms one of which a text must contain for ``node`` to have a positive span (start >= 0).

    A text with none of them can skip the query: its spans would be empty or (-1, -1) only.
    None when no such set exists, e.g. ``(a OR NOT b) NEAR/3 (c OR NOT d)``. For an AND
    (and NEAR) it is the smallest set that one positive part needs to have any span.
    """
    return _anchors(node)[1]


def _anchors(node: Node) -> tuple[frozenset[Term] | None, frozenset[Term] | None]:
    """(terms without which ``node`` has no span at all, terms without which it has no positive span)."""
    if isinstance(node, Phrase):
        terms = None if node.first is None else frozenset(node.first)
        return terms, terms
    if isinstance(node, Not):
        return None, frozenset()
    if isinstance(node, Or):
        found = [_anchors(p) for p in node.parts]
        return _union(e for e, _ in found), _union(r for _, r in found)
    if isinstance(node, And):
        found = [_anchors(p) for p in node.parts if not isinstance(p, Not)]
    else:
        found = [_anchors(node.left), _anchors(node.right)]
    needed = min((e for e, _ in found if e is not None), key=len, default=None)
    if needed is not None:  # that part (side) has no span: neither has the AND (NEAR)
        return needed, needed
    return None, _union(r for _, r in found)  # positive spans come from the parts (sides)


def _union(sets: Iterable[frozenset[Term] | None]) -> frozenset[Term] | None:
    out: frozenset[Term] = frozenset()
    for terms in sets:
        if terms is None:
            return None
        out |= terms
    return out


def _near(left: list[tuple[int, int]], right: list[tuple[int, int]], distance: int) -> list[tuple[int, int]]:
    """Left spans with a right span at most ``distance`` tokens away, and that right span.

    Sorted right spans and binary search keep this O(n log n): a text of 20,000
    alternating words costs no more than one pass.
    """
    by_start = sorted(right)
    starts = [s for s, _ in by_start]
    by_end = sorted(right, key=lambda sp: sp[1])
    ends = [e for _, e in by_end]
    out: list[tuple[int, int]] = []
    for ls, le in left:
        i = bisect_left(starts, le)  # a right span starting after the left one ends
        if i < len(starts) and starts[i] - le <= distance:
            out += [(ls, le), by_start[i]]
            continue
        j = bisect_right(ends, ls) - 1  # a right span ending before the left one starts
        if j >= 0 and ls - ends[j] <= distance:
            out += [(ls, le), by_end[j]]
    return out


@dataclass(frozen=True)
class Query:
    text: str
    root: Node

    def find(self, text: str) -> list[tuple[int, int]]:
        return [s for s in spans(self.root, Doc.of(text)) if s[0] >= 0]

    def matches(self, text: str) -> bool:
        return bool(spans(self.root, Doc.of(text)))


def compile_query(query: str, aliases: AliasTable | None = None, transliterate: bool = False) -> Query:
    """``transliterate``: every word also matches its transliterations into the other script."""
    return Query(query, Parser(query, aliases, transliterate).parse())
