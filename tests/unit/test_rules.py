"""The rules file: the shipped one is valid; broken rules fail naming the rule and position."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from steppewatch.alerts.rules import RulesError, load_rules

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"name": "r1", "query": '"Astana talks"', "recipients": ["a@example.org"]}


def write(tmp_path: Path, rules: list[dict], **extra: object) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"rules": rules, **extra}, allow_unicode=True), "utf-8")
    return path


def test_shipped_rules_include_astana_talks() -> None:
    rules = load_rules(ROOT / "config" / "alerts.yaml")
    assert rules.get("Astana talks").query.matches("the Nur-Sultan talks on Syria")
    assert any(r.rule.mode == "digest" for r in rules.rules)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"query": '"Astana talks" AND (Syria'}, "field query: position 25: missing ')'"),
        ({"query": "Astana OR"}, "field query: position 9"),
        ({"fields": ["title", "body"]}, "field fields.1"),
        ({"recipients": []}, "field recipients"),
        ({"recipients": ["not-an-address"]}, "not an e-mail address"),
        ({"colour": "red"}, "field colour: Extra inputs"),
        ({"mode": "digest"}, "needs a schedule"),
        ({"mode": "digest", "schedule": "every day"}, "not a cron expression"),
        ({"timezone": "Asia/Nowhere"}, "unknown time zone"),
        ({"min_occurrences": 0}, "field min_occurrences"),
    ],
)
def test_bad_rule_is_named(tmp_path: Path, change: dict, words: str) -> None:
    path = write(tmp_path, [GOOD, {**GOOD, "name": "broken", **change}])
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert str(path) in str(err.value) and "rule 'broken'" in str(err.value) and words in str(err.value)


def test_alias_groups_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, [{**GOOD, "query": "Kcell"}], aliases=[["Kcell", "Кселл"]])
    assert load_rules(path).get("r1").query.matches("акции Кселл выросли")
    with pytest.raises(RulesError, match="aliases"):
        load_rules(write(tmp_path, [GOOD], aliases="Kcell"))


def test_alerts_check_cli_exits_non_zero_naming_the_rule(tmp_path: Path) -> None:
    path = write(tmp_path, [GOOD, {**GOOD, "name": "broken", "query": "(Astana"}])
    proc = subprocess.run([sys.executable, "-m", "steppewatch.cli", "alerts", "check"], capture_output=True,
                          text=True, env=dict(os.environ, STEPPEWATCH_ALERTS=str(path)), cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "broken" in proc.stderr and "position 7" in proc.stderr
    path.write_text("rules: [ {name: x", "utf-8")
    proc = subprocess.run([sys.executable, "-m", "steppewatch.cli", "alerts", "check"], capture_output=True,
                          text=True, env=dict(os.environ, STEPPEWATCH_ALERTS=str(path)), cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "invalid YAML" in proc.stderr
