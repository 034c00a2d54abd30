"""extract_page on hand-written pages from real-world templates unlike the generated fixture sites.

The pages and what each must give are in tests/fixtures/pages/ (expected.yaml says why each
page is there). Text expectations are substrings of the article text with whitespace
collapsed; a published date must be the same instant, with an offset.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from pipelines.extract import extract_page
from steppewatch.models import Article, Rejection, RejectReason
from steppewatch.registry import adhoc_site

PAGES = Path(__file__).resolve().parents[1] / "fixtures" / "pages"
EXPECTED = PAGES / "expected.yaml"
ENTRIES: list[dict] = yaml.safe_load(EXPECTED.read_text("utf-8"))

REQUIRED_KEYS = {"file", "why", "url", "timezone"}
ARTICLE_KEYS = {"must_contain", "must_not_contain", "published", "date_source", "language"}


def _collapse(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_page(entry: dict) -> None:
    site = adhoc_site(entry["url"]).model_copy(update={"timezone": entry["timezone"]})
    result = extract_page((PAGES / entry["file"]).read_bytes(), entry["url"], site)

    if "rejected" in entry:
        expected = RejectReason(entry["rejected"])
        assert isinstance(result, Rejection), f"stored as an article ({result.title!r}), expected rejection {expected.value}"
        assert result.reason == expected, f"rejected as {result.reason.value} ({result.detail}), expected {expected.value}"
        return

    assert isinstance(result, Article), f"rejected as {result.reason.value}: {result.detail}"
    text = _collapse(result.text)
    problems = [f"missing {s!r}" for s in entry.get("must_contain", []) if _collapse(s) not in text]
    problems += [f"present {s!r}" for s in entry.get("must_not_contain", []) if _collapse(s) in text]
    if "published" in entry:
        want = datetime.fromisoformat(entry["published"])
        got = datetime.fromisoformat(result.published) if result.published else None
        if got is None or got.tzinfo is None or got != want:
            problems.append(f"published {result.published!r}, expected {entry['published']!r}")
    for field in ("date_source", "language"):
        if field in entry and getattr(result, field) != entry[field]:
            problems.append(f"{field} {getattr(result, field)!r}, expected {entry[field]!r}")
    assert not problems, "; ".join(problems)


def test_expected_yaml_lists_every_page() -> None:
    listed = [e["file"] for e in ENTRIES]
    on_disk = sorted(p.name for p in PAGES.iterdir() if p.is_file() and p != EXPECTED)
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert sorted(listed) == on_disk, (
        f"not listed: {sorted(set(on_disk) - set(listed))}; listed but missing: {sorted(set(listed) - set(on_disk))}"
    )
    for entry in ENTRIES:
        name = entry.get("file")
        assert REQUIRED_KEYS <= entry.keys(), f"{name}: missing {sorted(REQUIRED_KEYS - entry.keys())}"
        assert (PAGES / name).is_file(), f"{name} does not exist"
        assert str(entry["why"]).strip(), f"{name}: empty why"
        if "rejected" in entry:
            RejectReason(entry["rejected"])  # a known reason
            assert not (ARTICLE_KEYS & entry.keys()), f"{name}: rejected page with article expectations"
        else:
            assert entry.get("must_contain"), f"{name}: an article entry needs must_contain"
        unknown = entry.keys() - REQUIRED_KEYS - ARTICLE_KEYS - {"rejected"}
        assert not unknown, f"{name}: unknown keys {sorted(unknown)}"
        if "published" in entry:
            assert datetime.fromisoformat(entry["published"]).tzinfo is not None, f"{name}: published without offset"
