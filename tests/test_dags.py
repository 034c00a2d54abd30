"""DAG integrity: import, timetables with real intervals, tags, retries, params, light parsing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest

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
    crawl = dag.get_task("crawl_day")
    assert crawl.map_index_template == "{{ item_label }}"
    assert all(t.retries >= 2 for t in dag.tasks)


def test_dag_files_parse_fast_without_heavy_imports() -> None:
    code = (
        "import sys, time, json, runpy\n"
        "import airflow.sdk\n"  # the dag-processor has Airflow loaded already
        "before = set(sys.modules)\n"
        "times = {}\n"
        f"for name in {sorted(p.name for p in DAGS.glob('*.py'))!r}:\n"
        "    t = time.perf_counter(); runpy.run_path(f'dags/{name}'); times[name] = time.perf_counter() - t\n"
        "heavy = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('scrapy', 'trafilatura', 'boto3', 'botocore', 'pyarrow', 'duckdb', 'datasketch', 'numpy', 'lxml', "
        "'twisted', 'psycopg', 'snowballstemmer', 'courlan', 'htmldate'))\n"
        "print(json.dumps({'times': times, 'heavy': heavy}))\n"
    )
    env = dict(os.environ, AIRFLOW__CORE__LOAD_EXAMPLES="false")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print("DAG file parse times (s):", result["times"])
    assert result["heavy"] == [], "DAG files must not import crawl/storage libraries at top level"
    assert sum(result["times"].values()) < 1.0


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
