"""Near-duplicate primitives: the fast MinHash signature is datasketch's, value for value."""

from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given
from hypothesis import strategies as st

from steppewatch import dedup


@pytest.mark.parametrize("size", [1, 2, 7, 150, 2000])
def test_signature_equals_datasketch_minhash(size: int) -> None:
    rng = random.Random(size)
    shingle_set = {rng.getrandbits(32) for _ in range(size)}
    reference = MinHash(num_perm=dedup.NUM_PERM, seed=dedup.SEED)
    reference.update_batch([s.to_bytes(4, "little") for s in sorted(shingle_set)])
    ours = dedup.signature(shingle_set)
    assert ours.dtype == np.uint64
    assert np.array_equal(ours, reference.hashvalues.astype(np.uint64))
    assert np.array_equal(dedup.signature(set(shingle_set)), ours), "the SHA-1 cache changes nothing"


def test_empty_signature_and_band_hashes_are_stable() -> None:
    assert np.array_equal(dedup.signature(set()),
                          MinHash(num_perm=dedup.NUM_PERM, seed=dedup.SEED).hashvalues.astype(np.uint64))
    bands = dedup.band_hashes(dedup.signature({1, 2, 3}))
    assert len(bands) == dedup.BANDS and all(0 <= h < 2**63 for h in bands)


def test_shingles_are_stemmed_content_words() -> None:
    a = dedup.shingles("Переговоры в Астане продолжились переговорами министров", "ru")
    b = dedup.shingles("переговор астане продолжились министров", "ru")
    assert a == b and len(a) == 4


@given(st.sets(st.integers(0, 2**32 - 1), max_size=60), st.sets(st.integers(0, 2**32 - 1), max_size=60),
       st.sets(st.integers(0, 2**32 - 1), max_size=20))
def test_jaccard_of_a_packed_set_is_the_set_jaccard(a: set[int], b: set[int], common: set[int]) -> None:
    a, b = a | common, b | common
    assert dedup.jaccard_packed(a, dedup.pack(b)) == pytest.approx(dedup.jaccard(a, b))
