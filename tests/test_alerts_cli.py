"""`alerts preview` and `alerts match --since/--until` through the CLI (issue 14): the window is
[since, until) on the publication instant, dates or datetimes; `preview --query`; and the
warnings of `alerts check` on lower-case operators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from steppewatch.index import Index
from steppewatch.store import LocalStore
from tests.test_alerts import _article, _distinct
from tests.test_crawl_fixtures import FIXTURES

RULES = [{"name": "r", "query": "Astana", "recipients": ["a@example.org"]}]
# (title, publication time): the window [2024-12-03T10:00Z, 2024-12-04) holds only "B"
PUBLISHED = {
    "A": "2024-12-03T09:59:59Z",        # a second before the window
    "B": "2024-12-03T10:00:00Z",        # its first instant
    "C": "2024-12-03T11:59:00+05:00",   # 06:59 UTC: the same day, before the window
    "D": "2024-12-04T00:00:00Z",        # the --until day: outside a window ending on it
    "E": "2024-12-02T23:30:00-01:00",   # 2024-12-03T00:30 UTC: filed under the 3rd
}


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steppewatch.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, STEPPEWATCH_SITES=str(FIXTURES / "sites.yaml"), **env), cwd=cwd,
                          timeout=300)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(yaml.safe_dump({"rules": RULES}), "utf-8")
    store, index = LocalStore(tmp_path / "store"), Index(f"sqlite:///{tmp_path}/i.db")
    for n, (title, when) in enumerate(PUBLISHED.items()):
        _article(store, index, f"Astana story {title}", _distinct(n), published=when)
    return {"STEPPEWATCH_STORE": str(tmp_path / "store"), "STEPPEWATCH_INDEX_URL": f"sqlite:///{tmp_path}/i.db",
            "STEPPEWATCH_ALERTS": str(rules), "STEPPEWATCH_OUTBOX_DIR": str(tmp_path / "outbox")}


def titles(stdout: str) -> list[str]:
    return sorted(line.split("Astana story ")[1] for line in stdout.splitlines() if "Astana story " in line)


def test_preview_honours_times_and_excludes_until(env: dict[str, str], tmp_path: Path) -> None:
    proc = run("alerts", "preview", "r", "--since", "2024-12-03T10:00:00Z", "--until", "2024-12-04", env=env,
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert titles(proc.stdout) == ["B"]
    assert "1 matching records for rule 'r' published in [2024-12-03T10:00:00+00:00, 2024-12-04T00:00:00+00:00)" \
        in proc.stdout
    # the same instant written with an offset; days alone cover whole UTC days, the --until day excluded
    proc = run("alerts", "preview", "r", "--since", "2024-12-03T15:00+05:00", "--until", "2024-12-04T00:00",
               env=env, cwd=tmp_path)
    assert titles(proc.stdout) == ["B"]
    proc = run("alerts", "preview", "r", "--since", "2024-12-03", "--until", "2024-12-04", env=env, cwd=tmp_path)
    assert titles(proc.stdout) == ["A", "B", "C", "E"]
    assert not (tmp_path / "outbox").exists()


def test_match_windows_are_half_open_and_adjacent_windows_do_not_overlap(env: dict[str, str], tmp_path: Path) -> None:
    proc = run("alerts", "match", "--since", "2024-12-03T10:00:00Z", "--until", "2024-12-04", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"examined": 1, "new_matches": 1}
    proc = run("alerts", "match", "--since", "2024-12-03", "--until", "2024-12-03T10:00:00Z", env=env, cwd=tmp_path)
    assert json.loads(proc.stdout) == {"examined": 3, "new_matches": 3}  # A, C, E; B is the next window's
    proc = run("alerts", "match", "--since", "2024-12-04", "--until", "2024-12-04T00:00:01Z", env=env, cwd=tmp_path)
    assert json.loads(proc.stdout) == {"examined": 1, "new_matches": 1}  # D


@pytest.mark.parametrize("command", ["preview", "match"])
def test_an_empty_or_reversed_window_is_a_usage_error(command: str, env: dict[str, str], tmp_path: Path) -> None:
    rule = ["r"] if command == "preview" else []
    proc = run("alerts", command, *rule, "--since", "2024-12-04", "--until", "2024-12-03T23:00Z", env=env,
               cwd=tmp_path)
    assert proc.returncode == 2 and "--until" in proc.stderr and "[since, until)" in proc.stderr
    proc = run("alerts", command, *rule, "--since", "yesterday", "--until", "2024-12-04", env=env, cwd=tmp_path)
    assert proc.returncode == 2 and "--since: not an ISO 8601 date or datetime" in proc.stderr


def test_preview_query_without_editing_the_rules_file(env: dict[str, str], tmp_path: Path) -> None:
    proc = run("alerts", "preview", "--query", "Astana AND wheat", "--since", "2024-12-03", "--until", "2024-12-05",
               env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert titles(proc.stdout) == ["B"]  # topic 1 of _distinct: wheat harvest export quotas
    assert "1 matching records for query 'Astana AND wheat'" in proc.stdout
    # the alias table applies: Nur-Sultan finds Astana
    proc = run("alerts", "preview", "--query", '"Nur-Sultan" AND metro', "--since", "2024-12-03T10:00Z", "--until",
               "2024-12-05", env=env, cwd=tmp_path)
    assert titles(proc.stdout) == ["D"]
    # no rules file at all: a query still runs, with the default aliases
    proc = run("alerts", "preview", "--query", "Nur-Sultan", "--since", "2024-12-04", "--until", "2024-12-05",
               env={**env, "STEPPEWATCH_ALERTS": str(tmp_path / "absent.yaml")}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert titles(proc.stdout) == ["D"]


def test_preview_query_errors_name_the_problem(env: dict[str, str], tmp_path: Path) -> None:
    window = ["--since", "2024-12-03", "--until", "2024-12-04"]
    proc = run("alerts", "preview", "--query", "(Astana OR Almaty", *window, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert "steppewatch: error: --query: position 17: missing ')' in '(Astana OR Almaty'" in proc.stderr
    proc = run("alerts", "preview", "r", "--query", "Astana", *window, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and "not allowed with" in proc.stderr
    proc = run("alerts", "preview", *window, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and "one of the arguments rule --query is required" in proc.stderr
    proc = run("alerts", "preview", "--query", "Astana or Almaty", *window, env=env, cwd=tmp_path)
    assert proc.returncode == 0 and "warning: --query: position 7: 'or' is searched as a word" in proc.stderr


def test_check_warns_on_lowercase_operators_and_still_exits_0(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(yaml.safe_dump({"rules": [
        {"name": "lower or", "query": "Astana or Almaty", "recipients": ["a@example.org"]},
        {"name": "mixed", "query": "Kcell And Beeline Not Tele2", "recipients": ["a@example.org"]},
        {"name": "near", "query": "talks near/3 Astana", "recipients": ["a@example.org"]},
        {"name": "quoted", "query": '"rock and roll" OR "Procter and Gamble"', "recipients": ["a@example.org"]},
        {"name": "upper", "query": "(Astana OR Almaty) AND NOT football OR talks NEAR/3 Syria",
         "recipients": ["a@example.org"]},
    ]}), "utf-8")
    proc = run("alerts", "check", env={"STEPPEWATCH_ALERTS": str(rules)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "5 rules valid" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 4, proc.stderr
    assert "rule 'lower or': field query: position 7: 'or' is searched as a word, not the operator OR" in warnings[0]
    assert "rule 'mixed'" in warnings[1] and "'And'" in warnings[1]
    assert "rule 'mixed'" in warnings[2] and "'Not'" in warnings[2]
    assert "rule 'near'" in warnings[3] and "'near/3'" in warnings[3] and "NEAR/3" in warnings[3]
    assert not any("quoted" in w or "upper" in w for w in warnings)


def test_check_refuses_a_rule_limited_to_a_site_the_registry_does_not_have(tmp_path: Path) -> None:
    """A Cyrillic look-alike of a real id passed `alerts check` and could never fire."""
    rules = tmp_path / "alerts.yaml"
    rules.write_text(yaml.safe_dump({"rules": [
        {"name": "ok", "query": "Astana", "recipients": ["a@example.org"], "sites": ["kazinfo"]},
        {"name": "look-alike", "query": "Astana", "recipients": ["a@example.org"], "sites": ["k\u0430zinfo"]},
        {"name": "typo", "query": "Astana", "recipients": ["a@example.org"], "sites": ["kazinf"]},
    ]}, allow_unicode=True), "utf-8")
    proc = run("alerts", "check", env={"STEPPEWATCH_ALERTS": str(rules)}, cwd=tmp_path)  # the fixture sites
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "rule 'look-alike': field sites: no site with id 'k\u0430zinfo' (it mixes scripts: CYRILLIC, LATIN)" \
        in proc.stderr and "did you mean kazinfo?" in proc.stderr
    assert "rule 'typo': field sites: no site with id 'kazinf'; did you mean kazinfo?" in proc.stderr
    assert "rule 'ok'" not in proc.stderr.split("error:", 1)[1]


def test_status_shows_last_runs_incidents_waiting_alerts_and_digests(env: dict[str, str], tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from steppewatch.health import site_health

    rules = tmp_path / "alerts.yaml"
    rules.write_text(yaml.safe_dump({"rules": [
        {"name": "Astana", "query": "Astana", "recipients": ["a@example.org"]},
        {"name": "Energy digest", "query": "gas", "recipients": ["e@example.org"], "mode": "digest",
         "schedule": "0 8 * * *", "timezone": "Asia/Almaty"},
    ]}), "utf-8")
    env = {**env, "STEPPEWATCH_ALERTS": str(rules)}
    assert run("alerts", "match", "--since", "2024-12-01", "--until", "2024-12-08", env=env, cwd=tmp_path).returncode == 0
    index = Index(env["STEPPEWATCH_INDEX_URL"])
    with index.engine.begin() as conn:
        conn.execute(site_health.insert().values(site="kazinfo", empty_runs=0, incident="sources_failing",
                                                 detail="every source failed:\nfeed http://kazinfo.test/rss: 503",
                                                 updated_at=datetime(2024, 12, 3, tzinfo=UTC)))
    from steppewatch.archive import put_manifest

    store = LocalStore(tmp_path / "store")
    for run_id, stored in (("20241203T100000Z-aaaaaaaa", 3), ("20241203T110000Z-bbbbbbbb", 5)):
        put_manifest(store, run_id, {"run_id": run_id, "sites": ["kazinfo"], "finished": f"{run_id[:15]}",
                                     "counts": {"kazinfo": {"stored": stored, "fetched": 7}}})
    proc = run("status", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "stored 5, fetched 7  (20241203T110000Z-bbbbbbbb)" in proc.stdout, "the newest run"
    assert "no run in the store" in proc.stdout  # the other fixture sites
    assert "open incidents: 1" in proc.stdout and "kazinfo: sources_failing since 2024-12-03" in proc.stdout
    assert "Astana (immediate):" in proc.stdout and "pending" in proc.stdout
    assert "Energy digest:" in proc.stdout and "(0 8 * * * Asia/Almaty)" in proc.stdout
    report = json.loads(run("status", "--json", env=env, cwd=tmp_path).stdout)
    assert report["incidents"][0]["site"] == "kazinfo"
    assert any(a["rule"] == "Astana" and a["status"] == "pending" and a["count"] > 0 for a in report["alerts_waiting"])
    assert report["digests"][0]["next_due"].endswith("+00:00")
    assert report["sites"]["kazinfo"]["run_id"] == "20241203T110000Z-bbbbbbbb"
