"""Near-duplicate detection: shingles, MinHash signatures and LSH bands.

Copies of one story differ by boilerplate, small edits, machine "spinning" (synonym
swaps) or a light rewrite. Word n-gram shingles miss rewrites (3-gram Jaccard of the
fixtures' rewrite pair is 0.05), so shingles here are Snowball-stemmed content words
(longer than 3 letters; digits and function words dropped): the measurement in docs/DEDUP.md separates
same-story from different-story pairs at a Jaccard of 0.2. MinHash + LSH banding finds
candidates in the index in constant time per article; each candidate is then checked
on the exact sets stored beside it (``same_story``), so estimate noise cannot merge
two stories.

Word overlap alone merged different stories (docs/DEDUP.md, "Story decision"): two pages
of one site share the site's furniture that survives extraction (subscribe lines,
disclaimers, "read also" lines), and two reports on one topic share its vocabulary (two
earthquakes, two days' currency rates, two long guides on one subject). So the
decision (``same_story``) weighs the article's own text, its phrases and its figures:

- paragraphs found verbatim in both texts of a same-site pair are the site's template
  and their words do not count, unless one text has next to nothing outside them: then
  it is a copy or the earlier version of the other;
- the two texts must share phrases (stemmed word bigrams) as well as words: a copy or a
  rewrite keeps names and quoted statements, two texts on one subject share words;
- two texts that both quote figures must share a good part of them: a rewrite or a
  brief quotes the same magnitudes, amounts and counts, another event has its own.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field, replace
from functools import lru_cache
from hashlib import blake2b, sha1
from pathlib import Path

import numpy as np

from steppewatch.models import normalise_text

NUM_PERM = 128
SEED = 20241201
SAME_STORY_JACCARD = 0.20
# Verbatim paragraphs shared by two pages of one site are the site's template unless one
# page has less than this share of its shingles outside them: then it is a copy or the
# earlier version of the other. The written pairs give the same result from 0.05 to 0.6
# (an update's earlier page has nothing of its own, a template page most of its words):
# 0.25 lets the copy carry a few edited lines (docs/DEDUP.md).
COPY_REST = 0.25
# Two texts at the word threshold must also share this Jaccard of stemmed word bigrams:
# long texts on one subject reach the word threshold on vocabulary alone (measured on
# real pages, docs/DEDUP.md).
SAME_STORY_PHRASES = 0.05
# Two texts quoting at least MIN_NUMBERS figures each (years excluded: they date a
# topic, not an event) are one story only if the smaller set shares NUMBER_AGREEMENT of
# its figures with the other.
MIN_NUMBERS = 3
NUMBER_AGREEMENT = 0.5
# b bands of r rows: a pair at Jaccard s becomes a candidate with probability
# 1 - (1 - s**r)**b; with r=2, b=64: 0.93 at s=0.2, 0.15 at s=0.05 (the median of
# unrelated fixture pairs). Candidates are limited to the same language and a week
# either side, ranked by shared bands, and verified exactly.
BANDS, ROWS = 64, 2
MAX_DAYS_APART = 7

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    word
    for line in (Path(__file__).parent / "data" / "stopwords.txt").read_text("utf-8").splitlines()
    if not line.startswith("#")
    for word in line.split()
)
_STEMMERS = {"en": "english", "ru": "russian", "uk": "russian", "kk": None, "uz": None}


@lru_cache(maxsize=8)
def _stemmer(lang: str | None):  # noqa: ANN202 (snowballstemmer has no type stubs)
    import snowballstemmer

    name = _STEMMERS.get(lang or "", "english" if not lang else None)
    return snowballstemmer.stemmer(name) if name else None


# word -> shingle hash, per stemmer: news vocabulary is Zipfian, so nearly every word of an
# article was stemmed and hashed before
_HASHES: dict[str | None, dict[str, int]] = {}
_HASH_CACHE_MAX = 500_000


def _hash(word: str) -> int:
    return int.from_bytes(blake2b(word.encode("utf-8"), digest_size=4).digest(), "little")


def shingles(text: str, language: str | None) -> set[int]:
    """The article's shingle set as 32-bit hashes of stemmed content words."""
    return _shingle_set(_WORD.findall(normalise_text(text)), language)


def _shingle_set(all_words: list[str], language: str | None) -> set[int]:
    words = {w for w in all_words if len(w) > 3 and not w.isdigit() and w not in _STOPWORDS}
    stemmer = _stemmer(language)
    key = _STEMMERS.get(language or "", "english" if not language else None)
    cache = _HASHES.setdefault(key, {})
    if len(cache) > _HASH_CACHE_MAX:
        cache.clear()
    new = [w for w in words if w not in cache]
    if new:
        stems = stemmer.stemWords(new) if stemmer is not None else new
        cache.update(zip(new, map(_hash, stems), strict=True))
    return {cache[w] for w in words}


# MinHash with datasketch 2's affine32 scheme, computed here: importing datasketch costs
# 0.4 s per process (it loads scipy and its storage backends) for the few lines below.
# Permutations as datasketch draws them for this seed: an odd multiplier and an offset.
_GEN = np.random.RandomState(SEED)
_PERM_A = _GEN.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
_PERM_B = _GEN.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
_EMPTY = np.full(NUM_PERM, (1 << 32) - 1, dtype=np.uint32)
_FMIX = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35), np.uint32(16))
# shingle -> SHA-1 hash of its 4 bytes (the same Zipfian reuse as _HASHES)
_SHA1: dict[int, int] = {}


def signature(shingle_set: set[int]) -> np.ndarray:
    """The MinHash signature of a shingle set: the values ``datasketch.MinHash.update_batch``
    gives (affine32 scheme: SHA-1 of each shingle's 4 bytes, MurmurHash3's finalizer, then
    ``a * h + b`` mod 2**32 per permutation), as uint64.

    Computed here with each shingle's SHA-1 cached, which was most of the cost;
    tests/unit/test_dedup.py checks it against datasketch.
    """
    if not shingle_set:
        return _EMPTY.astype(np.uint64)
    if len(_SHA1) > _HASH_CACHE_MAX:
        _SHA1.clear()
    cache = _SHA1
    for s in shingle_set:
        if s not in cache:
            cache[s] = int.from_bytes(sha1(s.to_bytes(4, "little")).digest()[:4], "little")
    hv = np.fromiter((cache[s] for s in shingle_set), dtype=np.uint32, count=len(shingle_set))
    s1, m1, s2, m2, s3 = _FMIX
    hv = hv ^ (hv >> s1)
    hv = hv * m1
    hv = hv ^ (hv >> s2)
    hv = hv * m2
    hv = hv ^ (hv >> s3)
    phv = hv[:, None] * _PERM_A + _PERM_B
    return np.minimum(_EMPTY, phv.min(axis=0)).astype(np.uint64)


def band_hashes(sig: np.ndarray) -> list[int]:
    """One 63-bit hash per band (fits a signed BIGINT column)."""
    out = []
    for b in range(BANDS):
        chunk = sig[b * ROWS:(b + 1) * ROWS].tobytes()
        out.append(int.from_bytes(blake2b(chunk, digest_size=8).digest(), "little") >> 1)
    return out


def jaccard(a: set[int], b: set[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def pack(shingle_set: set[int]) -> bytes:
    return struct.pack(f"<{len(shingle_set)}I", *sorted(shingle_set))


def unpack(blob: bytes) -> set[int]:
    return set(struct.unpack(f"<{len(blob) // 4}I", blob))


def jaccard_packed(a: set[int], blob: bytes) -> float:
    """``jaccard(a, unpack(blob))`` without building the second set or the union.

    A commit checks up to 50 stored candidates; building their sets and unions cost
    more than the SQL that found them. A packed set has no repeats, so its size and
    the intersection give the union's size.
    """
    other = struct.unpack(f"<{len(blob) // 4}I", blob)
    if not a and not other:
        return 1.0
    shared = len(a.intersection(other))
    return shared / (len(a) + len(other) - shared)


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_YEAR = re.compile(r"(?:19|20)\d\d")


def paragraph_hash(paragraph: str) -> int:
    """32-bit hash of a paragraph's normalised text (how copies of one line compare)."""
    return _hash(normalise_text(paragraph))


def numbers(text: str) -> set[int]:
    """Hashes of the figures a text quotes: decimal comma as point, leading zeros and
    years dropped, so ``5,1`` and ``5.1`` or ``06:42`` and ``6:42`` compare equal."""
    out = set()
    for token in _NUMBER.findall(text):
        token = token.replace(",", ".").lstrip("0") or "0"
        if _YEAR.fullmatch(token):
            continue
        out.add(_hash(token))
    return out


# word -> 32-bit id of its stem, per stemmer (the Zipfian reuse of _HASHES)
_STEM_IDS: dict[str | None, dict[str, int]] = {}
_MIX = 0x9E3779B1  # an odd 32-bit multiplier (Fibonacci hashing): order matters in a bigram


def _stem_ids(words: list[str], language: str | None) -> list[int]:
    cache = _STEM_IDS.setdefault(_STEMMERS.get(language or "", "english" if not language else None), {})
    if len(cache) > _HASH_CACHE_MAX:
        cache.clear()
    new = list({w for w in words if w not in cache})
    if new:
        stemmer = _stemmer(language)
        stems = stemmer.stemWords(new) if stemmer is not None else new
        cache.update(zip(new, map(_hash, stems), strict=True))
    return [cache[w] for w in words]


def _bigrams(lines: list[list[int]]) -> set[int]:
    """Bigram hashes of each line's stem ids (none across lines), in one numpy pass: a
    Python set comprehension over every pair cost as much as the rest of the evidence."""
    ids = [i for line in lines for i in line]
    if len(ids) < 2:
        return set()
    arr = np.fromiter(ids, dtype=np.uint64, count=len(ids))
    # a pair is within a line unless its second word starts one
    starts = np.zeros(len(ids), dtype=bool)
    bounds = np.cumsum([len(line) for line in lines])[:-1]
    starts[bounds[bounds < len(ids)]] = True
    keep = ~starts[1:]
    pairs = ((arr[:-1] * np.uint64(_MIX)) ^ arr[1:]) & np.uint64(0xFFFFFFFF)
    return set(pairs[keep].tolist())


@dataclass
class Evidence:
    """What the story decision compares: shingles, phrases, paragraph hashes and figures.

    ``by_paragraph`` (paragraph hash -> its shingles, stem ids and figures) is known for an article
    built from its text and absent for one read back from the index; the decision needs
    it on one side only, since shared paragraphs are the same text on both. ``phrases``
    and ``numbers`` are None for rows stored before they were (the checks then pass).
    """

    shingles: set[int]
    phrases: set[int] | None = None
    paragraphs: set[int] = field(default_factory=set)
    numbers: set[int] | None = None
    by_paragraph: dict[int, tuple[set[int], list[int], set[int]]] | None = None


def evidence(text: str, language: str | None) -> Evidence:
    """An article's evidence from its text: shingles (as ``shingles`` gives), stemmed
    word bigrams within paragraphs, paragraph hashes (lines, normalised) and figures."""
    by_paragraph: dict[int, tuple[set[int], list[int], set[int]]] = {}
    for line in text.splitlines():
        norm = normalise_text(line)
        if norm:
            words = _WORD.findall(norm)
            by_paragraph.setdefault(_hash(norm), (_shingle_set(words, language), _stem_ids(words, language),
                                                  numbers(line)))
    parts = list(by_paragraph.values())
    return Evidence(shingles=set().union(*(p[0] for p in parts)), phrases=_bigrams([p[1] for p in parts]),
                    paragraphs=set(by_paragraph), numbers=set().union(*(p[2] for p in parts)),
                    by_paragraph=by_paragraph)


def without_template(a: Evidence, b: Evidence, same_site: bool) -> tuple[Evidence, Evidence]:
    """Both sides without a same-site pair's shared template paragraphs: their words,
    phrases and figures (the paragraphs' text is known from the side built from text)."""
    shared = a.paragraphs & b.paragraphs
    known = a.by_paragraph if a.by_paragraph is not None else b.by_paragraph
    if not (same_site and shared and known is not None):
        return a, b
    parts = [known[h] for h in shared if h in known]
    words = set().union(*(p[0] for p in parts))
    own_a, own_b = a.shingles - words, b.shingles - words
    # one page with next to nothing outside the shared paragraphs: a copy or an earlier
    # version of the other, whose paragraphs are its own text
    if min(len(own_a) / (len(a.shingles) or 1), len(own_b) / (len(b.shingles) or 1)) < COPY_REST:
        return a, b
    pairs = _bigrams([p[1] for p in parts])
    figures = set().union(*(p[2] for p in parts))

    def strip(e: Evidence, own: set[int]) -> Evidence:
        return replace(e, shingles=own, paragraphs=e.paragraphs - shared,
                       phrases=e.phrases - pairs if e.phrases is not None else None,
                       numbers=e.numbers - figures if e.numbers is not None else None)

    return strip(a, own_a), strip(b, own_b)


def own_text_similarity(a: Evidence, b: Evidence, same_site: bool) -> tuple[float, float]:
    """Jaccard of the shingle sets and of the phrase sets (1.0 when a side has none
    stored), without a same-site pair's shared template paragraphs."""
    a, b = without_template(a, b, same_site)
    phrases = jaccard(a.phrases, b.phrases) if a.phrases is not None and b.phrases is not None else 1.0
    return jaccard(a.shingles, b.shingles), phrases


def numbers_agree(a: Evidence, b: Evidence) -> bool:
    if a.numbers is None or b.numbers is None:
        return True
    smaller = min(len(a.numbers), len(b.numbers))
    if smaller < MIN_NUMBERS:
        return True
    return len(a.numbers & b.numbers) >= NUMBER_AGREEMENT * smaller


def same_story(a: Evidence, b: Evidence, same_site: bool, threshold: float = SAME_STORY_JACCARD) -> bool:
    """The story decision: own-text word and phrase overlap, figures not contradicting."""
    a, b = without_template(a, b, same_site)
    words, pairs = own_text_similarity(a, b, same_site=False)
    return words >= threshold and pairs >= SAME_STORY_PHRASES and numbers_agree(a, b)
