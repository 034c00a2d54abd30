"""The registry file: the shipped one is valid and broad; broken ones fail clearly."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from steppewatch.registry import RegistryError, fill_dates, load_registry, periods

ROOT = Path(__file__).resolve().parents[2]

GOOD_SITE = {
    "id": "demo_site",
    "name": "Demo",
    "country": "KZ",
    "languages": ["ru"],
    "allowed_domains": ["example.kz"],
    "feeds": [{"url": "https://example.kz/rss"}],
    "listings": [{"url": "https://example.kz/news/page/{page}/", "article_pattern": r"/news/\d+", "pages": 2}],
}


def test_shipped_registry_covers_the_region() -> None:
    registry = load_registry(ROOT / "config" / "sites.yaml")
    assert len(registry.sites) >= 20
    countries = Counter(s.country for s in registry.sites)
    assert {"KZ", "KG", "UZ", "TJ", "TM"} <= set(countries)
    languages = {lang for s in registry.sites for lang in s.languages}
    assert {"ru", "en"} <= languages
    for site in registry.sites:
        assert not site.verified, f"{site.id}: nothing was probed live, so nothing is verified"
        sources = list(site.sources())
        assert sources, site.id


def _write(tmp_path: Path, sites: list[dict]) -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump({"sites": sites}, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda s: s.update(feedz=[]), "feedz", "Extra inputs"),
        (lambda s: s["listings"][0].update(article_pattern="(unclosed"), "listings.0.article_pattern", "invalid regex"),
        (lambda s: s["feeds"][0].update(url="ftp://example.kz/rss"), "feeds.0.url", "http"),
        (lambda s: s["feeds"][0].update(url="https://example.kz/{when}"), "feeds.0.url", "placeholder"),
        (lambda s: s.update(feeds=[], listings=[]), "(site)", "no discovery sources"),
        (lambda s: s.update(country="Kazakhstan"), "country", "pattern"),
        (lambda s: s.update(id="Bad Id"), "id", "slug"),
        # the index's site columns hold 64 characters on PostgreSQL: a longer id failed every commit there
        (lambda s: s.update(id="a" * 65), "id", "at most 64 characters"),
        (lambda s: s.update(timezone="Asia/Nowhere"), "timezone", "time zone"),
        (lambda s: s["feeds"][0].update(url="https://other.example/rss"), "(site)", "outside allowed_domains"),
        (lambda s: s.update(extraction={"drop": ["div[["]}), "extraction.drop", "CSS"),
    ],
)
def test_bad_registry_names_file_site_and_field(tmp_path: Path, mutate, field: str, words: str) -> None:
    site = yaml.safe_load(yaml.safe_dump(GOOD_SITE))
    mutate(site)
    path = _write(tmp_path, [site])
    with pytest.raises(RegistryError) as err:
        load_registry(path)
    message = str(err.value)
    assert str(path) in message
    assert repr(site["id"]) in message
    assert f"field {field}" in message
    assert words.lower() in message.lower()


def test_duplicate_id_and_invalid_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, [GOOD_SITE, GOOD_SITE])
    with pytest.raises(RegistryError, match=r"site 'demo_site': field id: duplicate id"):
        load_registry(path)
    path.write_text("sites: [ {id: x, ", encoding="utf-8")
    with pytest.raises(RegistryError, match="invalid YAML"):
        load_registry(path)
    path.write_text("!!python/object/apply:os.system ['echo pwned']", encoding="utf-8")
    with pytest.raises(RegistryError):
        load_registry(path)


def test_crawl_refuses_a_bad_registry_before_crawling(tmp_path: Path) -> None:
    site = dict(GOOD_SITE, listings=[{"url": "https://example.kz/", "article_pattern": "("}])
    path = _write(tmp_path, [site])
    proc = subprocess.run(
        [sys.executable, "-m", "steppewatch.cli", "crawl", "--all", "--since", "2024-12-01", "--until", "2024-12-02"],
        env={"STEPPEWATCH_SITES": str(path), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2
    assert str(path) in proc.stderr and "demo_site" in proc.stderr and "article_pattern" in proc.stderr
    assert not (tmp_path / "data").exists()


def test_date_templates_expand_over_the_window() -> None:
    since, until = datetime(2024, 12, 30, tzinfo=UTC), datetime(2025, 1, 2, 12, tzinfo=UTC)
    assert [a.isoformat() for a, _ in periods(since, until, "day")] == [
        "2024-12-30", "2024-12-31", "2025-01-01", "2025-01-02"]
    assert periods(since, until, "month")[0][1].isoformat() == "2024-12-31"
    week = periods(since, until, "week")
    assert week[0][0].weekday() == 0 and len(week) == 1
    url = fill_dates("https://x.kz/s.xml?date_start={YYYYMMDD}&date_end={END_YYYYMMDD}&d={D}&m={M}",
                     week[0][0], week[0][1])
    assert url == "https://x.kz/s.xml?date_start=20241230&date_end=20250105&d=30&m=12"
