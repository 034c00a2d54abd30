"""End to end on real Airflow 3 (``airflow standalone``: scheduler, dag-processor, API server,
triggerer, LocalExecutor, SQLite) against the replayed fixture sites, moto-free local store,
SQLite index and an aiosmtpd server:

- a scheduled run of a site DAG crawls its data interval with ``--mode discover``, stores
  every new article its sources list within the look-back and e-mails its alert;
- a site DAG triggered without a logical date (no data interval) crawls the last complete
  schedule interval before it was triggered, at the first try;
- ``airflow backfill create`` over 3 days runs 3 contiguous daily intervals with ``--mode
  backfill``, stores those days' articles (and none dated further than the date tolerance
  away) and e-mails nothing;
- the ``steppewatch_backfill`` form DAG with ``send_alerts`` sends one summary per rule;
- re-running both backfills stores nothing new and sends nothing.

Every Airflow process is stopped with its whole process group afterwards.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from steppewatch.airflow_local import prepare_sqlite
from steppewatch.pools import pool_definitions
from steppewatch.registry import load_registry
from steppewatch.replay import ReplayServer
from tests.airflow_harness import BIN, Airflow, live_registry_entry, live_site, utc
from tests.conftest import SMTPSink, free_port
from tests.test_crawl_fixtures import FIXTURES, GOLDEN, ROOT

pytestmark = pytest.mark.timeout(900)

@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("e2e")
    now = datetime.now(UTC)
    sites_root = base / "sites"
    sites_root.mkdir()
    for host in ("kazinfo.test", "steppe-times.test"):
        (sites_root / host).symlink_to(FIXTURES / "sites" / host)
    live = live_site(sites_root, "live-news.test", now)
    fixture_sites = {s["id"]: s for s in yaml.safe_load((FIXTURES / "sites.yaml").read_text("utf-8"))["sites"]}
    registry = [
        live_registry_entry("live_news", "live-news.test"),
        # daily: a 3-day backfill is 3 runs. Unpausing the DAG for it also starts its latest
        # scheduled run, which (--mode discover) would store whatever the undated news-feed
        # listing leads to, whatever its date: only the dated sources (feed, day archive) here
        {**fixture_sites["kazinfo"], "schedule": "0 0 * * *",
         "listings": [listing for listing in fixture_sites["kazinfo"]["listings"] if "period" in listing]},
        fixture_sites["steppe_times"],
    ]
    (base / "sites.yaml").write_text(yaml.safe_dump({"sites": registry}, allow_unicode=True), "utf-8")
    replay = ReplayServer(sites_root)
    replay.start()
    smtp = SMTPSink().start()
    home = base / "airflow"
    home.mkdir()
    api_port = free_port()
    env = dict(
        os.environ,
        PATH=f"{BIN}:{os.environ.get('PATH', '')}",
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="false",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="true",
        AIRFLOW__API__PORT=str(api_port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{api_port}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="false",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS="steppewatch.airflow_local.SQLITE_CONNECT_ARGS",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC="steppewatch.airflow_local.SQLITE_CONNECT_ARGS_ASYNC",
        STEPPEWATCH_SITES=str(base / "sites.yaml"),
        STEPPEWATCH_STORE=str(base / "store"),
        STEPPEWATCH_INDEX_URL=f"sqlite:///{base}/index.sqlite",
        STEPPEWATCH_ALERTS=str(ROOT / "config" / "alerts.yaml"),
        STEPPEWATCH_PROXY=replay.url,
        STEPPEWATCH_SMTP_URL=smtp.url,
        STEPPEWATCH_SCRAPY_SETTINGS=json.dumps({"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0,
                                                "RETRY_BACKOFF_BASE": 0.05}),
        STEPPEWATCH_OPS_RECIPIENTS="ops@example.org",
    )
    env.pop("VIRTUAL_ENV", None)
    prepare_sqlite(home / "airflow.db")  # WAL, as `make airflow` does
    airflow = Airflow(home, env, f"sqlite:///{home}/airflow.db")
    airflow.start("standalone", "standalone")
    try:
        port = env["AIRFLOW__API__PORT"]
        airflow.wait("the API server", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5).status == 200, timeout=240)
        # the crawl tasks' domain pools, as `make airflow` creates them (steppewatch/pools.py)
        (home / "pools.json").write_text(json.dumps(pool_definitions(load_registry(base / "sites.yaml"))))
        airflow.cli("pools", "import", str(home / "pools.json"))
        wanted = {"steppewatch_live_news", "steppewatch_kazinfo", "steppewatch_steppe_times", "steppewatch_backfill"}
        airflow.wait("the DAGs to be parsed", lambda: wanted <= {r[0] for r in airflow.query("select dag_id from dag")})
        yield {"airflow": airflow, "smtp": smtp, "replay": replay, "store": base / "store", "live": live,
               "index": f"sqlite:///{base}/index.sqlite"}
    finally:
        airflow.stop()
        smtp.stop()
        replay.stop()
    assert airflow.leftovers() == [], "Airflow processes outlived the test"


# a backfill owns the articles dated in its window widened by this at both edges
# (NEWS_DATE_TOLERANCE_HOURS, steppewatch/windows.py): nothing in the window is left out
TOLERANCE = timedelta(hours=14)


def records(store: Path, site: str) -> list[dict]:
    return [json.loads(p.read_text("utf-8")) for p in sorted(store.glob(f"articles/site={site}/date=*/*.json"))]


def snapshot(store: Path) -> dict[str, int]:
    return {str(p.relative_to(store)): p.stat().st_mtime_ns for p in store.rglob("*")
            if p.is_file() and "/runs/" not in f"/{p.relative_to(store)}"}


def crawl_summary(airflow: Airflow, dag_id: str, run_id: str) -> dict:
    """What a run's ``crawl_window`` returned (its XCom: JSON text, sometimes JSON of JSON text)."""
    (value,), = airflow.query("select value from xcom where dag_id = :d and run_id = :r and task_id = 'crawl_window' "
                              "and key = 'return_value'", d=dag_id, r=run_id)
    while isinstance(value, str | bytes):
        value = json.loads(value)
    return value


def test_scheduled_run_stores_what_it_discovers_and_emails_its_alert(stack: dict) -> None:
    airflow, smtp = stack["airflow"], stack["smtp"]
    airflow.cli("dags", "unpause", "steppewatch_live_news")
    runs = airflow.wait_runs("steppewatch_live_news", 1)
    run_id, run_type, _, start, end = runs[0]
    assert run_type == "scheduled"
    start, end = utc(start), utc(end)
    assert end - start == timedelta(hours=1)
    crawled = crawl_summary(airflow, "steppewatch_live_news", run_id)
    assert (utc(crawled["since"]), utc(crawled["until"]), crawled["mode"]) == (start, end, "discover")
    in_interval = {a["url"] for a in stack["live"] if start <= a["published"] < end}
    assert in_interval, "the live site has articles in every recent hour"
    # --mode discover: the run owns every new URL its sources list within the look-back (48 hours),
    # its interval's articles and those a late feed or a misread date would otherwise lose
    assert {r["canonical_url"] for r in records(stack["store"], "live_news")} == {a["url"] for a in stack["live"]}
    astana = [a for a in stack["live"] if "Astana" in a["title"]]
    subjects = [m["Subject"] for m in smtp.parsed() if m["Subject"].startswith("[steppewatch] Astana talks")]
    assert len(subjects) == len(astana) == 1
    airflow.cli("dags", "pause", "steppewatch_live_news")


def test_trigger_without_logical_date_crawls_the_last_complete_interval(stack: dict) -> None:
    airflow = stack["airflow"]
    dag_id = "steppewatch_live_news"  # the default hourly schedule
    airflow.cli("dags", "unpause", dag_id)
    airflow.cli("dags", "trigger", dag_id)  # no --logical-date: Airflow 3 gives the run no data interval
    (run_id, _, _, start, end), = airflow.wait_runs(dag_id, 1, run_type="manual")
    assert (start, end) == (None, None)
    (logical_date, run_after), = airflow.query("select logical_date, run_after from dag_run where run_id = :r", r=run_id)
    assert logical_date is None
    run_after = utc(run_after)
    tries = airflow.query("select try_number from task_instance where dag_id = :d and run_id = :r "
                          "and task_id = 'crawl_window'", d=dag_id, r=run_id)
    assert tries == [(1,)], "the crawl succeeded at its first try"
    crawled = crawl_summary(airflow, dag_id, run_id)
    since, until = utc(crawled["since"]), utc(crawled["until"])
    # the last complete hour before the trigger, whatever the time of day
    assert until - since == timedelta(hours=1) and until <= run_after < until + timedelta(hours=1)
    assert (until.minute, until.second, until.microsecond) == (0, 0, 0)
    assert crawled["mode"] == "discover"
    in_window = {a["url"] for a in stack["live"] if since <= a["published"] < until}
    assert in_window <= {r["canonical_url"] for r in records(stack["store"], "live_news")}
    logs = list((airflow.home / "logs").glob(f"dag_id={dag_id}/run_id={run_id}/task_id=crawl_window/*.log"))
    assert logs and "triggered without a logical date" in logs[0].read_text(errors="replace")
    airflow.cli("dags", "pause", dag_id)


def test_backfill_create_covers_three_days_and_emails_nothing(stack: dict) -> None:
    airflow, smtp = stack["airflow"], stack["smtp"]
    sent_before = len(smtp.messages)
    # Airflow starts a backfill's runs only while the DAG is unpaused. Unpausing also starts the
    # latest scheduled run, which holds the DAG's one active run: let it finish first, so the
    # backfill's runs start in a known state (and a stuck scheduled run is reported as such)
    airflow.cli("dags", "unpause", "steppewatch_kazinfo")
    airflow.wait_runs("steppewatch_kazinfo", 1, run_type="scheduled")
    first = airflow.backfill_create("steppewatch_kazinfo", "--from-date", "2024-12-02", "--to-date", "2024-12-04")
    runs = airflow.wait_runs("steppewatch_kazinfo", 3, run_type="backfill")
    intervals = [(utc(r[3]), utc(r[4])) for r in runs]
    assert len(runs) == 3 and all(e - s == timedelta(days=1) for s, e in intervals)
    assert all(intervals[i][1] == intervals[i + 1][0] for i in range(2))
    lo, hi = intervals[0][0], intervals[-1][1]
    assert (lo, hi) == (datetime(2024, 12, 2, tzinfo=UTC), datetime(2024, 12, 5, tzinfo=UTC))
    expected = {a["url"] for a in GOLDEN["kazinfo"]["articles"] if a["published"] and lo <= utc(a["published"]) < hi}
    got = {r["canonical_url"] for r in records(stack["store"], "kazinfo")}
    got |= {json.loads(p.read_text())["canonical_url"] for p in stack["store"].glob("aliases/site=kazinfo/*/*.json")}
    assert expected <= got and len(expected) >= 3
    for record in records(stack["store"], "kazinfo"):
        assert lo - TOLERANCE <= utc(record["published"]) < hi + TOLERANCE, record["canonical_url"]
    per_day = [crawl_summary(airflow, "steppewatch_kazinfo", r[0]) for r in runs]
    assert [(utc(c["since"]), utc(c["until"]), c["mode"]) for c in per_day] == [
        (s, e, "backfill") for s, e in intervals], "each day's crawl reports its own window and counts"
    assert len(smtp.messages) == sent_before, "a backfill records matches and e-mails nobody"

    def completed(backfill: int) -> bool:
        return airflow.query("select completed_at from backfill where id = :b", b=backfill)[0][0] is not None

    airflow.wait("the backfill to be marked complete", lambda: completed(first))
    before = snapshot(stack["store"])
    second = airflow.backfill_create("steppewatch_kazinfo", "--from-date", "2024-12-02", "--to-date", "2024-12-04",
                                     "--reprocess-behavior", "completed")
    # seen once in a loaded run: no run of the second backfill started within 300 s; say why if again
    airflow.wait("the re-run backfill to complete", lambda: completed(second), timeout=600, detail=lambda: (
        f"backfills: {airflow.query('select id, completed_at, reprocess_behavior from backfill')}\n"
        f"runs: {airflow.runs('steppewatch_kazinfo')}\n"
        "task instances: " + str(airflow.query(
            "select run_id, task_id, state, try_number from task_instance where dag_id = 'steppewatch_kazinfo' "
            "order by run_id, task_id"))))
    rerun = airflow.query("select count(*) from dag_run where dag_id = 'steppewatch_kazinfo' and clear_number > 0 "
                          "and backfill_id = :b", b=second)
    assert rerun == [(3,)], "the second backfill re-ran the 3 days"
    runs = airflow.wait_runs("steppewatch_kazinfo", 3, run_type="backfill")
    assert len(runs) == 3
    assert snapshot(stack["store"]) == before, "re-running stores nothing new"
    assert len(smtp.messages) == sent_before
    airflow.cli("dags", "pause", "steppewatch_kazinfo")


def test_backfill_dag_sends_one_summary_per_rule_then_nothing(stack: dict) -> None:
    airflow, smtp = stack["airflow"], stack["smtp"]
    airflow.cli("dags", "unpause", "steppewatch_backfill")
    conf = {"sites": ["steppe_times"], "start": "2024-12-03", "end": "2024-12-04", "send_alerts": True}
    sent_before = len(smtp.messages)
    airflow.cli("dags", "trigger", "steppewatch_backfill", "--conf", json.dumps(conf))
    airflow.wait_runs("steppewatch_backfill", 1)
    labels = {r[0] for r in airflow.query(
        "select rendered_map_index from task_instance where dag_id = 'steppewatch_backfill' and task_id like 'crawl_day.%' and map_index >= 0")}
    assert labels == {"steppe_times 2024-12-03", "steppe_times 2024-12-04"}
    new = smtp.parsed()[sent_before:]
    summaries = [m["Subject"] for m in new]
    assert any(s.startswith("[steppewatch] Astana talks: ") and "stories, 2024-12-0" in s for s in summaries)
    assert all("stories, " in s for s in summaries), summaries
    assert len(summaries) == len(set(summaries))
    stored = {r["canonical_url"] for r in records(stack["store"], "steppe_times")}
    lo, hi = datetime(2024, 12, 3, tzinfo=UTC), datetime(2024, 12, 5, tzinfo=UTC)
    assert {a["url"] for a in GOLDEN["steppe_times"]["articles"] if lo <= utc(a["published"]) < hi} <= stored
    for record in records(stack["store"], "steppe_times"):
        assert lo - TOLERANCE <= utc(record["published"]) < hi + TOLERANCE, record["canonical_url"]

    before, sent = snapshot(stack["store"]), len(smtp.messages)
    airflow.cli("dags", "trigger", "steppewatch_backfill", "--conf", json.dumps(conf))
    airflow.wait_runs("steppewatch_backfill", 2)
    assert snapshot(stack["store"]) == before and len(smtp.messages) == sent
