"""Site health that is seen: an open incident fails the run's health task in Airflow, and ops
recipients added while it is open are told of it; the recovery reaches everyone told."""

from __future__ import annotations

from typing import Any


def _run(**kw: object) -> dict[str, Any]:
    return {"site": "s", "fetched": 10, "stored": 3, "rejected": {}, "all_sources_failed": False,
            "sources": [], **kw}


def test_ops_recipients_added_while_an_incident_is_open_are_told_of_it(tmp_path) -> None:  # noqa: ANN001
    """Without STEPPEWATCH_OPS_RECIPIENTS nobody was told, and a recipient added later never
    heard of an incident already open."""
    from email import message_from_bytes
    from email.policy import default

    from steppewatch.alerts.mail import DirectoryMailer
    from steppewatch.health import check

    url, outbox = f"sqlite:///{tmp_path}/i.sqlite", tmp_path / "outbox"
    mailer = DirectoryMailer(outbox)
    failing = _run(all_sources_failed=True, stored=0, fetched=0, run_id="r",
                   sources=[{"kind": "feed", "url": "http://s.test/rss", "error": "http_503"}])

    def told() -> list[tuple[str, str]]:
        out = []
        for path in sorted(outbox.glob("*.eml")):
            message = message_from_bytes(path.read_bytes(), policy=default)
            out.append((str(message["To"]), str(message["Subject"])))
            path.unlink()
        return out

    assert check(url, failing, [], mailer)["incident"] == "sources_failing" and told() == []
    check(url, {**failing, "run_id": "r2"}, ["ops-a@example.org"], mailer)
    assert told() == [("ops-a@example.org", "[steppewatch ops] s: sources_failing incident")]
    check(url, {**failing, "run_id": "r3"}, ["ops-a@example.org"], mailer)
    assert told() == [], "told once"
    check(url, {**failing, "run_id": "r4"}, ["ops-a@example.org", "ops-b@example.org"], mailer)
    assert told() == [("ops-b@example.org", "[steppewatch ops] s: sources_failing incident")]
    check(url, _run(run_id="r5"), ["ops-b@example.org"], mailer)
    assert told() == [("ops-a@example.org, ops-b@example.org", "[steppewatch ops] s: sources_failing recovered")]


def test_an_open_incident_fails_the_health_task_without_retry(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """A site whose sources all fail stayed green in Airflow: the incident now shows as a failed
    task (AirflowFailException: no retry), and the next healthy run is green again."""
    import pytest
    from airflow.sdk.exceptions import AirflowFailException

    from steppewatch import airflow_tasks

    monkeypatch.setenv("STEPPEWATCH_INDEX_URL", f"sqlite:///{tmp_path}/i.sqlite")
    monkeypatch.setenv("STEPPEWATCH_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.delenv("STEPPEWATCH_OPS_RECIPIENTS", raising=False)
    monkeypatch.setattr(airflow_tasks, "task_env", lambda base=None: dict(__import__("os").environ))
    failing = _run(all_sources_failed=True, stored=0, fetched=0, run_id="r1",
                   sources=[{"kind": "feed", "url": "http://s.test/rss", "error": "http_503"}])
    with pytest.raises(AirflowFailException, match="incident sources_failing open.*ops told: nobody"):
        airflow_tasks.check_site_health(failing)
    assert airflow_tasks.check_site_health(_run(run_id="r2"))["incident"] is None
