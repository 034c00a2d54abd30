"""The labelled matching set (bench/alerts_labelled.py): precision and recall overall and per
category, each category present; sidebar-only mentions never alert on the fixture pages."""

from __future__ import annotations

from bench.alerts_labelled import (
    CATEGORIES,
    TARGET_PRECISION,
    TARGET_RECALL,
    count,
    naive_false_positives,
    overall,
    precision,
    recall,
    rows,
)


def test_labelled_set_precision_and_recall() -> None:
    found = rows()
    counts = count(found)
    assert set(counts) == set(CATEGORIES)
    for category in CATEGORIES:  # every category has items that should alert and items that should not
        mine = [r for r in found if r.category == category]
        assert any(r.truth for r in mine) and any(not r.truth for r in mine), category
    total = overall(counts)
    wrong = [(r.category, r.query, r.item[:80], r.truth) for r in found if r.truth != r.hit]
    assert precision(total) >= TARGET_PRECISION, wrong
    assert recall(total) >= TARGET_RECALL, wrong


def test_the_set_can_tell_sidebars_from_bodies() -> None:
    # the fixture pages' whole-page text would alert on their sidebar headline
    assert len(naive_false_positives()) >= 5
