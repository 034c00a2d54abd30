"""The same-story decision on the written labelled pairs (tests/fixtures/stories/).

The set holds what merged different stories before issue 14: one site's pages sharing
its template furniture, and one topic's different events (two earthquakes, two days'
currency rates, two court rulings on one bank) in Russian, English, Kazakh, Uzbek and
Kyrgyz; and what must still join: copies, rewrites, updates and briefs.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.stories_labelled import WRITTEN, Counts, evaluate, written_pairs
from steppewatch import dedup

PAIRS = written_pairs()
LANGUAGES = sorted({p.language for p in PAIRS})
BLOCK_LINES = sorted({line for block in yaml.safe_load(WRITTEN.read_text("utf-8"))["blocks"].values()
                      for line in block.splitlines()})


def decide(a: str, b: str, language: str, same_site: bool) -> bool:
    """As the index decides: ``b`` is read back from storage, without its text."""
    stored = replace(dedup.evidence(b, language), by_paragraph=None)
    return dedup.same_story(dedup.evidence(a, language), stored, same_site)


def counts(language: str) -> Counts:
    return evaluate([p for p in PAIRS if language in ("all", p.language)])["all"]


@pytest.mark.parametrize("language", ["all", *LANGUAGES])
def test_precision_and_recall(language: str) -> None:
    c = counts(language)
    assert c.precision >= 0.98, (language, c)
    if language == "all":
        assert c.recall >= 0.95, c


@pytest.mark.parametrize("pair", [p for p in PAIRS if p.category == "template"], ids=lambda p: p.id)
def test_template_pages_of_one_site_stay_apart(pair) -> None:  # noqa: ANN001
    assert not decide(pair.a, pair.b, pair.language, pair.same_site)


DIFFERENT = [p for p in PAIRS if p.category == "same_topic"]
SAME = [p for p in PAIRS if p.same]
lines = st.one_of(st.sampled_from(BLOCK_LINES),
                  st.lists(st.text("abcdefghijklmnopqrstuvwxyz", min_size=4, max_size=9), min_size=3, max_size=12)
                  .map(" ".join))


@settings(max_examples=60, deadline=None)
@given(pair=st.sampled_from(DIFFERENT), head=st.lists(lines, max_size=3), tail=st.lists(lines, max_size=5))
def test_shared_template_never_merges_two_stories(pair, head: list[str], tail: list[str]) -> None:  # noqa: ANN001
    """One site's furniture (up to 8 lines) around two different stories' bodies."""
    a = "\n".join([*head, pair.a, *tail])
    b = "\n".join([*head, pair.b, *tail])
    assert not decide(a, b, pair.language, same_site=True)


@settings(max_examples=60, deadline=None)
@given(pair=st.sampled_from(SAME), tail=st.lists(lines, max_size=6), same_site=st.booleans(),
       first=st.booleans())
def test_appended_boilerplate_never_separates_a_copy(pair, tail: list[str], same_site: bool,  # noqa: ANN001
                                                     first: bool) -> None:
    a, b = pair.a, "\n".join([pair.a, *tail])
    if first:
        a, b = b, a
    assert decide(a, b, pair.language, same_site)
