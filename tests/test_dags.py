"""DAG integrity: import, timetables with real intervals, tags, retries, params, light parsing."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pendulum
import pytest

from steppewatch import airflow_tasks
from steppewatch.airflow_tasks import backfill_days, task_env
from steppewatch.health import Health, assess
from steppewatch.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    home = tmp_path_factory.mktemp("airflow")
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "false"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors_and_one_dag_per_enabled_site(dagbag) -> None:  # noqa: ANN001
    assert dagbag.import_errors == {}
    sites = load_registry().enabled()
    assert {f"steppewatch_{s.id}" for s in sites} | {"steppewatch_alert_digest", "steppewatch_backfill"} == set(
        dagbag.dags)


def test_site_dags_cover_real_intervals(dagbag) -> None:  # noqa: ANN001
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    registry = {s.id: s for s in load_registry().enabled()}
    for dag_id, dag in dagbag.dags.items():
        if dag_id == "steppewatch_backfill":
            assert type(dag.timetable).__name__ == "NullTimetable"  # manual only
            continue
        assert type(dag.timetable).__name__ == "CronDataIntervalTimetable", dag_id
        assert dag.catchup is False and dag.max_active_runs <= 2, dag_id
        assert dag.start_date == pendulum.datetime(2024, 1, 1, tz="UTC")
        timetable = coerce_to_core_timetable(dag.timetable)  # what the scheduler uses
        info = timetable.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True))
        assert info.data_interval.start < info.data_interval.end, dag_id
        manual = timetable.infer_manual_data_interval(run_after=pendulum.datetime(2024, 12, 3, 10, 30, tz="UTC"))
        assert manual.start < manual.end, dag_id
        if dag_id.startswith("steppewatch_") and dag_id[12:] in registry:
            site = registry[dag_id[12:]]
            assert {f"site:{site.id}", f"country:{site.country}"} <= set(dag.tags)
            assert dag.timetable.expression == (site.schedule or "0 * * * *")
            hourly = timetable.infer_manual_data_interval(run_after=pendulum.datetime(2024, 12, 3, 10, 30, tz="UTC"))
            if site.schedule is None:
                assert (hourly.start, hourly.end) == (pendulum.datetime(2024, 12, 3, 9, tz="UTC"),
                                                      pendulum.datetime(2024, 12, 3, 10, tz="UTC"))
            for task in dag.tasks:
                assert task.retries >= 2 and task.retry_exponential_backoff, (dag_id, task.task_id)
            assert {t.task_id for t in dag.tasks} == {"crawl_window", "match_alerts", "send_alerts",
                                                       "check_site_health"}


def test_backfill_dag_form(dagbag) -> None:  # noqa: ANN001
    dag = dagbag.dags["steppewatch_backfill"]
    params = dag.params
    assert set(params.keys()) == {"sites", "start", "end", "send_alerts", "reprocess"}
    schema = params.get_param("sites").schema
    assert schema["type"] == "array" and set(schema["items"]["enum"]) == {s.id for s in load_registry().sites}
    assert params["send_alerts"] is False and params["reprocess"] is False
    crawls = [t for t in dag.tasks if t.task_id.startswith("crawl_day.") and t.is_mapped]  # one per domain pool
    assert crawls and all(t.map_index_template == "{{ item_label }}" for t in crawls)
    assert all(t.retries >= 2 for t in dag.tasks)


def test_dag_files_parse_without_heavy_imports() -> None:
    """The dag-processor parses every DAG file again and again: none may import the crawl or
    storage libraries at top level (what they import is checked, not how long it takes)."""
    code = (
        "import sys, json, runpy\n"
        "import airflow.sdk\n"  # the dag-processor has Airflow loaded already
        "before = set(sys.modules)\n"
        f"for name in {sorted(p.name for p in DAGS.glob('*.py'))!r}:\n"
        "    runpy.run_path(f'dags/{name}')\n"
        "heavy = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('scrapy', 'trafilatura', 'boto3', 'botocore', 'pyarrow', 'duckdb', 'datasketch', 'numpy', 'lxml', "
        "'twisted', 'psycopg', 'snowballstemmer', 'courlan', 'htmldate', 'sqlalchemy', 'pymorphy3'))\n"
        "print(json.dumps({'heavy': heavy}))\n"
    )
    env = dict(os.environ, AIRFLOW__CORE__LOAD_EXAMPLES="false")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], "DAG files must not import crawl/storage libraries at top level"


def _fake_cli(calls: list[tuple[str, ...]]):  # noqa: ANN202
    """``run_cli`` answering as the CLI would, recording each command line."""

    def run_cli(*args: str, env: dict | None = None, timeout: float = 0) -> str:
        calls.append(args)
        if args[0] != "crawl":
            return json.dumps({"new_matches": 0})
        counts = dict.fromkeys(("discovered", "fetched", "stored", "out_of_window", "errors", "source_errors",
                                "keys_written"), 0)
        return json.dumps({"run_id": "r1", "since": args[args.index("--since") + 1],
                           "until": args[args.index("--until") + 1],
                           "sites": {args[1]: {**counts, "rejected": {}, "all_sources_failed": False,
                                               "sources": []}}})

    return run_cli


def _window_and_mode(args: tuple[str, ...]) -> tuple[datetime, datetime, str]:
    return (datetime.fromisoformat(args[args.index("--since") + 1]),
            datetime.fromisoformat(args[args.index("--until") + 1]), args[args.index("--mode") + 1])


def _dag_run(run_type: str, run_after: datetime | None) -> SimpleNamespace:
    from airflow.sdk.api.datamodels._generated import DagRunType  # what a task sees

    return SimpleNamespace(run_id=f"{run_type}__x", run_type=DagRunType(run_type), run_after=run_after)


@pytest.fixture
def site_dag(dagbag):  # noqa: ANN001, ANN201
    """``site_dag(site_id, country, schedule)`` of dags/steppewatch_sites.py, as the DagBag loaded it."""
    dag_id = next(d for d in dagbag.dags if d not in ("steppewatch_backfill", "steppewatch_alert_digest"))
    return dagbag.dags[dag_id].get_task("crawl_window").python_callable.__globals__["site_dag"]


H = "0 * * * *"
D = "0 0 * * *"


@pytest.mark.parametrize(("schedule", "run_after", "since", "until"), [
    (H, datetime(2024, 12, 3, 10, 30, tzinfo=UTC), datetime(2024, 12, 3, 9, tzinfo=UTC),
     datetime(2024, 12, 3, 10, tzinfo=UTC)),  # inside an hour: the previous full hour
    (H, datetime(2024, 12, 3, 10, tzinfo=UTC), datetime(2024, 12, 3, 9, tzinfo=UTC),
     datetime(2024, 12, 3, 10, tzinfo=UTC)),  # on the boundary: the hour that just ended
    (H, datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC), datetime(2024, 12, 31, 23, tzinfo=UTC),
     datetime(2025, 1, 1, tzinfo=UTC)),  # across a year
    (D, datetime(2024, 12, 3, 10, 30, tzinfo=UTC), datetime(2024, 12, 2, tzinfo=UTC),
     datetime(2024, 12, 3, tzinfo=UTC)),  # daily, inside a day: yesterday
    (D, datetime(2024, 12, 3, tzinfo=UTC), datetime(2024, 12, 2, tzinfo=UTC),
     datetime(2024, 12, 3, tzinfo=UTC)),  # daily, at midnight: the day that just ended
    ("0 */3 * * *", datetime(2024, 12, 3, 10, 30, tzinfo=UTC), datetime(2024, 12, 3, 6, tzinfo=UTC),
     datetime(2024, 12, 3, 9, tzinfo=UTC)),
])
def test_run_without_logical_date_crawls_the_last_complete_interval(
        site_dag, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,  # noqa: ANN001
        schedule: str, run_after: datetime, since: datetime, until: datetime) -> None:
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(airflow_tasks, "run_cli", _fake_cli(calls))
    caplog.set_level(logging.INFO, logger="steppewatch.airflow_tasks")
    dag = site_dag("t", "KZ", schedule)
    # what Airflow passes a run triggered without a logical date: no data_interval_* at all
    crawled = dag.get_task("crawl_window").python_callable(dag=dag, dag_run=_dag_run("manual", run_after))
    assert [c[:2] for c in calls] == [("crawl", "t")]
    assert _window_and_mode(calls[0]) == (since, until, "discover")
    assert (crawled["since"], crawled["until"], crawled["mode"]) == (since.isoformat(), until.isoformat(), "discover")
    assert "no data interval (triggered without a logical date)" in caplog.text
    assert f"schedule '{schedule}' before its run_after {run_after.isoformat()}: " \
           f"[{since.isoformat()}, {until.isoformat()})" in caplog.text


@pytest.mark.parametrize(("run_type", "mode"), [("scheduled", "discover"), ("manual", "discover"),
                                                ("backfill", "backfill")])
def test_site_dag_crawls_its_data_interval_in_the_mode_of_its_run(
        site_dag, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,  # noqa: ANN001
        run_type: str, mode: str) -> None:
    import pendulum

    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(airflow_tasks, "run_cli", _fake_cli(calls))
    caplog.set_level(logging.INFO, logger="steppewatch.airflow_tasks")
    dag = site_dag("t", "KZ", H)
    start, end = pendulum.datetime(2024, 12, 2, 5, tz="UTC"), pendulum.datetime(2024, 12, 2, 6, tz="UTC")
    crawled = dag.get_task("crawl_window").python_callable(
        dag=dag, dag_run=_dag_run(run_type, pendulum.datetime(2025, 1, 1, tz="UTC")),
        data_interval_start=start, data_interval_end=end)
    assert _window_and_mode(calls[0]) == (start, end, mode) and crawled["mode"] == mode
    assert "crawling the run's data interval [2024-12-02T05:00:00+00:00, 2024-12-02T06:00:00+00:00)" in caplog.text


@pytest.mark.parametrize(("start", "end", "message"), [
    (datetime(2024, 12, 2, 5, tzinfo=UTC), None, "one end only"),
    (None, datetime(2024, 12, 2, 5, tzinfo=UTC), "one end only"),
    (datetime(2024, 12, 2, 6, tzinfo=UTC), datetime(2024, 12, 2, 5, tzinfo=UTC), "is empty"),
    (datetime(2024, 12, 2, 6, tzinfo=UTC), datetime(2024, 12, 2, 6, tzinfo=UTC), "is empty"),
    ("None", datetime(2024, 12, 2, 6, tzinfo=UTC), "expected a datetime, got 'None'"),
    ("yesterday", datetime(2024, 12, 2, 6, tzinfo=UTC), "not an ISO 8601 date or datetime"),
])
def test_malformed_interval_fails_at_once_without_crawling(
        site_dag, monkeypatch: pytest.MonkeyPatch, start: object, end: object, message: str) -> None:  # noqa: ANN001
    from airflow.sdk.exceptions import AirflowFailException

    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(airflow_tasks, "run_cli", _fake_cli(calls))
    dag = site_dag("t", "KZ", H)
    with pytest.raises(AirflowFailException, match=message):  # fails the task: no retries
        dag.get_task("crawl_window").python_callable(
            dag=dag, dag_run=_dag_run("manual", datetime(2024, 12, 3, tzinfo=UTC)),
            data_interval_start=start, data_interval_end=end)
    with pytest.raises(AirflowFailException, match="the run has neither a data interval nor a run_after"):
        dag.get_task("crawl_window").python_callable(dag=dag, dag_run=_dag_run("manual", None))
    assert calls == []


def test_crawl_window_passes_mode_and_refuses_bad_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(airflow_tasks, "run_cli", _fake_cli(calls))
    airflow_tasks.crawl_window("s", "2024-12-01T00:00:00+00:00", "2024-12-08T00:00:00+00:00")
    airflow_tasks.crawl_window("s", datetime(2024, 12, 1, tzinfo=UTC), "2024-12-02", reprocess=True, mode="backfill")
    assert calls == [
        ("crawl", "s", "--since", "2024-12-01T00:00:00+00:00", "--until", "2024-12-08T00:00:00+00:00",
         "--mode", "discover", "--json"),
        ("crawl", "s", "--since", "2024-12-01T00:00:00+00:00", "--until", "2024-12-02T00:00:00+00:00",
         "--mode", "backfill", "--json", "--reprocess")]
    for since, until, mode, message in [(None, "2024-12-02", "discover", "expected a datetime, got None"),
                                        ("2024-12-02", "2024-12-02", "discover", "is empty"),
                                        ("2024-12-01", "2024-12-02", "recent", "mode: expected one of")]:
        with pytest.raises(AirflowFailException, match=message):
            airflow_tasks.crawl_window("s", since, until, mode=mode)
    assert len(calls) == 2


def test_backfill_dag_crawls_its_days_in_backfill_mode(dagbag, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(airflow_tasks, "run_cli", _fake_cli(calls))
    crawl_day = next(t for t in dagbag.dags["steppewatch_backfill"].tasks
                     if t.task_id.startswith("crawl_day.") and t.is_mapped).python_callable
    context = {"dag_run": SimpleNamespace(dag_id="steppewatch_backfill", run_id="manual__x")}
    monkeypatch.setitem(crawl_day.__globals__, "get_current_context", lambda: context)
    crawl_day({"site": "s", "day": "2024-12-03"}, params={"reprocess": False, "send_alerts": False})
    assert _window_and_mode(calls[0]) == (datetime(2024, 12, 3, tzinfo=UTC), datetime(2024, 12, 4, tzinfo=UTC),
                                          "backfill")


def test_backfill_days() -> None:
    assert backfill_days(["a", "b"], "2024-12-30", "2025-01-01") == [
        {"site": s, "day": d} for s in ("a", "b") for d in ("2024-12-30", "2024-12-31", "2025-01-01")]
    with pytest.raises(ValueError, match="before start"):
        backfill_days(["a"], "2024-12-02", "2024-12-01")
    with pytest.raises(ValueError, match="at least one site"):
        backfill_days([], "2024-12-01", "2024-12-01")


def test_task_env_from_airflow_connections_and_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "AKID", "password": "SECRET",
        "extra": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-central-1"}}))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "mail.example", "port": 465, "login": "ops@x", "password": "p@ss:w",
        "extra": {"ssl": True}}))
    monkeypatch.setenv("AIRFLOW_VAR_STEPPEWATCH_STORE", "s3://bucket/prefix")
    env = task_env({})
    assert env["AWS_ACCESS_KEY_ID"] == "AKID" and env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert env["AWS_DEFAULT_REGION"] == "eu-central-1" and env["STEPPEWATCH_STORE"] == "s3://bucket/prefix"
    assert env["STEPPEWATCH_SMTP_URL"] == "smtps://ops%40x:p%40ss%3Aw@mail.example:465"


def _run(**kw: object) -> dict:
    return {"site": "s", "fetched": 10, "stored": 3, "rejected": {}, "all_sources_failed": False,
            "sources": [], **kw}


def test_health_incidents_mail_once_and_recover_once() -> None:
    state, events = Health("s"), []
    for run in [_run(), _run(all_sources_failed=True, stored=0, fetched=0,
                             sources=[{"kind": "feed", "url": "http://s.test/rss", "error": "http_403"}]),
                _run(all_sources_failed=True, stored=0, fetched=0), _run()]:
        state, event = assess(state, run, empty_runs=3)
        events.append(event)
    assert [e.kind if e else None for e in events] == [None, "incident", None, "recovered"]
    assert "http://s.test/rss: http_403" in events[1].detail
    state, events = Health("s"), []
    for stored in (2, 0, 0, 0, 0, 1):
        state, event = assess(state, _run(stored=stored), empty_runs=3)
        events.append(event.incident + "/" + event.kind if event else None)
    assert events == [None, None, None, "no_new_articles/incident", None, "no_new_articles/recovered"]
    state = Health("s")
    for _ in range(3):
        state, _event = assess(state, _run(rejected={"listing": 1}))
    state, event = assess(state, _run(rejected={"too_short": 8}))
    assert event and event.incident == "rejections_jump" and "8 of 10" in event.detail

