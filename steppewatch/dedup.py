"""Near-duplicate detection: shingles, MinHash signatures and LSH bands.

Copies of one story differ by boilerplate, small edits, machine "spinning" (synonym
swaps) or a light rewrite. Word n-gram shingles miss rewrites (3-gram Jaccard of the
fixtures' rewrite pair is 0.05), so shingles here are Snowball-stemmed content words
(longer than 3 letters; digits and function words dropped): the measurement in docs/DEDUP.md separates
same-story from different-story pairs at a Jaccard of 0.2. MinHash + LSH banding finds
candidates in the index in constant time per article; each candidate is then checked
against the exact Jaccard of the stored shingle sets, so estimate noise cannot merge
two stories.
"""

from __future__ import annotations

import re
import struct
from functools import lru_cache
from hashlib import blake2b
from pathlib import Path

import numpy as np
from datasketch import MinHash

from steppewatch.models import normalise_text

NUM_PERM = 128
SEED = 20241201
SAME_STORY_JACCARD = 0.20
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


def shingles(text: str, language: str | None) -> set[int]:
    """The article's shingle set as 32-bit hashes of stemmed content words."""
    words = [w for w in _WORD.findall(normalise_text(text))
             if len(w) > 3 and not w.isdigit() and w not in _STOPWORDS]
    stemmer = _stemmer(language)
    if stemmer is not None:
        words = stemmer.stemWords(words)
    return {int.from_bytes(blake2b(w.encode("utf-8"), digest_size=4).digest(), "little") for w in words}


_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=SEED)


def signature(shingle_set: set[int]) -> np.ndarray:
    mh = _TEMPLATE.copy()
    if shingle_set:
        mh.update_batch([s.to_bytes(4, "little") for s in sorted(shingle_set)])
    return mh.hashvalues.astype(np.uint64)


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
