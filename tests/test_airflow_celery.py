"""The docker-compose topology without containers: Airflow 3 on the CeleryExecutor.

PostgreSQL (127.0.0.1:5432) holds Airflow's metadata and the steppewatch index, Redis
(127.0.0.1:6379) is the Celery broker, and two Celery workers (two slots each) run the
tasks; moto's S3 server is the object store and aiosmtpd the mail server. Store, index
and mail come to the tasks the way a deployment configures them: Airflow Variables and
the ``aws_default`` / ``smtp_default`` connections, none of it in the workers' own
environment. The fixture sites are crawled in parallel across both workers:

- two live sites, one carrying a syndicated copy of the other's "Astana talks" story,
  run their scheduled DAGs at once: every article stored once, the alert sent once; a
  site that is gone mails ops once, through the ``smtp_default`` connection, and its run
  ends failed on ``check_site_health`` (an open incident is red in Airflow);
- the ``steppewatch_backfill`` DAG fans out 4 sites × 7 days over both workers: every
  fixture article stored once, one summary per rule, and no story in two summaries.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import sqlalchemy as sa
import yaml

from steppewatch.pools import pool_definitions
from steppewatch.registry import load_registry
from steppewatch.replay import ReplayServer
from tests.airflow_harness import BIN, Airflow, live_registry_entry, live_site
from tests.conftest import PG_URL, S3_ENV, SMTPSink, free_port
from tests.test_crawl_fixtures import FIXTURES, GOLDEN, ROOT

pytestmark = pytest.mark.timeout(900)

FIXTURE_SITES = ["steppe_times", "kazinfo", "dala_news", "silkroad_review"]
WORKERS = ["worker-1", "worker-2"]


def _database(admin: sa.Engine, name: str) -> str:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def celery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from moto.server import ThreadedMotoServer

    base = tmp_path_factory.mktemp("celery")
    tag = uuid.uuid4().hex[:10]
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    names = [f"sw_airflow_{tag}", f"sw_index_{tag}"]
    meta_url, index_url = (_database(admin, n) for n in names)

    now = datetime.now(UTC)
    if now.minute >= 57:  # the first scheduled run must cover the hour the live articles were put in
        time.sleep(3660 - now.minute * 60 - now.second)
        now = datetime.now(UTC)
    last_hour_end = now.replace(minute=0, second=0, microsecond=0)
    sites_root = base / "sites"
    sites_root.mkdir()
    for host in ("steppe-times.test", "kazinfo.test", "dala-news.test", "silkroad-review.test"):
        (sites_root / host).symlink_to(FIXTURES / "sites" / host)
    from tests.airflow_harness import TOPICS

    # published in the last complete hour, the window of the first scheduled run, and before it
    live = {"live_a": live_site(sites_root, "live-a.test", last_hour_end, TOPICS[:4], 30, 20),
            # the same Astana story word for word (syndicated), then two stories of its own
            "live_b": live_site(sites_root, "live-b.test", last_hour_end, [TOPICS[0], *TOPICS[4:]], 35, 20)}
    fixture = {s["id"]: s for s in yaml.safe_load((FIXTURES / "sites.yaml").read_text("utf-8"))["sites"]}
    registry = [live_registry_entry("live_a", "live-a.test"), live_registry_entry("live_b", "live-b.test"),
                live_registry_entry("gone", "gone.test"),  # no such site: every source fails
                *(fixture[s] for s in FIXTURE_SITES)]
    (base / "sites.yaml").write_text(yaml.safe_dump({"sites": registry}, allow_unicode=True), "utf-8")

    replay = ReplayServer(sites_root)
    replay.start()
    smtp = SMTPSink().start()
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto_port}"
    bucket = f"steppewatch-{tag}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"])
    s3.create_bucket(Bucket=bucket)

    home = base / "airflow"
    home.mkdir()
    api_port = free_port()
    redis_db = random.randint(1, 15)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "STEPPEWATCH_", "AIRFLOW", "VIRTUAL_ENV"))}
    env.update(
        PATH=f"{BIN}:{os.environ.get('PATH', '')}",
        PYTHONPATH=str(ROOT),  # for the test workers' hostname_callable
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=meta_url.replace("+psycopg:", "+psycopg2:"),
        AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:6379/{redis_db}",
        AIRFLOW__CELERY__RESULT_BACKEND="db+" + meta_url.replace("+psycopg:", "+psycopg2:"),
        AIRFLOW__OPERATORS__DEFAULT_QUEUE=f"steppewatch-{tag}",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="false",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="true",
        AIRFLOW__CORE__HOSTNAME_CALLABLE="tests.airflow_harness.worker_hostname",
        AIRFLOW__API__PORT=str(api_port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{api_port}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET=uuid.uuid4().hex,
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="false",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="true",
        # a deployment's configuration: Variables and connections, not the workers' environment
        AIRFLOW_VAR_STEPPEWATCH_STORE=f"s3://{bucket}/news",
        AIRFLOW_VAR_STEPPEWATCH_INDEX_URL=index_url,
        AIRFLOW_VAR_STEPPEWATCH_SITES=str(base / "sites.yaml"),
        AIRFLOW_VAR_STEPPEWATCH_OPS_RECIPIENTS="ops@example.org",
        AIRFLOW_CONN_AWS_DEFAULT=json.dumps({
            "conn_type": "aws", "login": S3_ENV["AWS_ACCESS_KEY_ID"], "password": S3_ENV["AWS_SECRET_ACCESS_KEY"],
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}),
        AIRFLOW_CONN_SMTP_DEFAULT=json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port}),
        # the DAG files read the registry at parse time
        STEPPEWATCH_SITES=str(base / "sites.yaml"),
        STEPPEWATCH_PROXY=replay.url,
        STEPPEWATCH_SCRAPY_SETTINGS=json.dumps({"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0,
                                                "RETRY_BACKOFF_BASE": 0.05}),
    )
    airflow = Airflow(home, env, meta_url)
    try:
        airflow.cli("db", "migrate")
        # the crawl tasks' domain pools, as docker's airflow-init creates them (steppewatch/pools.py)
        (home / "pools.json").write_text(json.dumps(pool_definitions(load_registry(base / "sites.yaml"))))
        airflow.cli("pools", "import", str(home / "pools.json"))
        airflow.start("api-server", "api-server", "--port", str(api_port))
        airflow.start("scheduler", "scheduler")
        airflow.start("dag-processor", "dag-processor")
        for name in WORKERS:
            airflow.env = {**env, "STEPPEWATCH_TEST_WORKER": name}
            airflow.start(name, "celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "2",
                          "--queues", env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"], "--skip-serve-logs")
        airflow.env = env
        airflow.wait("the API server", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{api_port}/api/v2/monitor/health", timeout=5).status == 200, timeout=240)
        airflow.wait("both Celery workers", lambda: all(
            b" ready." in (home / f"{name}.log").read_bytes() for name in WORKERS), timeout=240)
        wanted = {f"steppewatch_{s['id']}" for s in registry} | {"steppewatch_backfill"}
        airflow.wait("the DAGs to be parsed", lambda: wanted <= {r[0] for r in airflow.query("select dag_id from dag")})
        yield {"airflow": airflow, "smtp": smtp, "s3": s3, "bucket": bucket, "live": live, "index_url": index_url}
    finally:
        airflow.stop()
        smtp.stop()
        replay.stop()
        moto.stop()
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    assert airflow.leftovers() == [], "Airflow processes outlived the test"


def stored(ctx: dict, kind: str, site: str | None = None) -> list[dict]:
    """Records (``articles``) or aliases stored in S3, read back over the wire."""
    prefix = f"news/{kind}/" + (f"site={site}/" if site else "")
    pages = ctx["s3"].get_paginator("list_objects_v2").paginate(Bucket=ctx["bucket"], Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".json")]
    return [json.loads(ctx["s3"].get_object(Bucket=ctx["bucket"], Key=k)["Body"].read()) for k in keys]


def hosts(airflow: Airflow, dag_ids: list[str]) -> Counter:
    rows = airflow.query("select dag_id, hostname from task_instance where state = 'success'")
    return Counter(host for dag, host in rows if dag in dag_ids)


def test_two_sites_at_once_store_each_article_once_and_alert_once(celery: dict) -> None:
    airflow, smtp = celery["airflow"], celery["smtp"]
    dags = ["steppewatch_live_a", "steppewatch_live_b"]
    for dag in [*dags, "steppewatch_gone"]:
        airflow.cli("dags", "unpause", dag)
    windows = {}
    for dag in dags:
        (run,) = airflow.wait_runs(dag, 1, run_type="scheduled")
        windows[dag.removeprefix("steppewatch_")] = (run[3], run[4])
    got = {site: {r["canonical_url"] for r in stored(celery, "articles", site) + stored(celery, "aliases", site)}
           for site in celery["live"]}
    expected = {}
    for site, articles in celery["live"].items():
        lo, hi = (w if isinstance(w, datetime) else datetime.fromisoformat(str(w)) for w in windows[site])
        lo, hi = lo.astimezone(UTC), hi.astimezone(UTC)
        # a scheduled run crawls with --mode discover: it owns every new URL its feed lists
        # within the 48-hour look-back (steppewatch/windows.py), not only its hour's
        assert any(lo <= a["published"] < hi for a in articles), "the site has articles in the run's hour"
        expected[site] = {a["url"] for a in articles if a["published"] >= lo - timedelta(hours=48)}
    assert got == expected
    assert any("Astana" in a["title"] for a in stored(celery, "articles") + stored(celery, "aliases"))
    # the syndicated copy is one story: one record, one alias pointing at it
    aliases = stored(celery, "aliases")
    assert len(aliases) == 1 and aliases[0]["alias_of"] in {r["id"] for r in stored(celery, "articles")}
    # the gone site's run ends red: every source failed, so its crawl exits 4 and the crawl task
    # records the incident (ops told) and fails without retry; what follows it has nothing to do
    (gone_run,) = airflow.wait("the gone site's run to finish", lambda: [
        r for r in airflow.runs("steppewatch_gone", "scheduled") if r[2] in ("success", "failed")], timeout=420)
    assert gone_run[2] == "failed", gone_run
    states = dict(airflow.query("select task_id, state from task_instance where dag_id = 'steppewatch_gone' "
                                "and run_id = :r", r=gone_run[0]))
    assert states == {"crawl_window": "failed", "match_alerts": "upstream_failed", "send_alerts": "upstream_failed",
                      "check_site_health": "upstream_failed"}, states
    subjects = [m["Subject"] for m in smtp.parsed()]
    assert len([s for s in subjects if s.startswith("[steppewatch] Astana talks")]) == 1, subjects
    ops = [m for m in smtp.parsed() if m["Subject"].startswith("[steppewatch ops] gone:")]
    assert len(ops) == 1 and ops[0]["To"] == "ops@example.org", subjects
    assert "http://gone.test/feed.xml" in ops[0].get_body(("plain",)).get_content(), "names the failed source"
    assert len(subjects) == len(set(subjects)), "no alert sent twice"
    assert set(hosts(airflow, dags)) == set(WORKERS), "both workers ran tasks"
    for dag in [*dags, "steppewatch_gone"]:
        airflow.cli("dags", "pause", dag)


def test_backfill_fans_out_over_both_workers_and_summarises_once(celery: dict) -> None:
    airflow, smtp = celery["airflow"], celery["smtp"]
    before_subjects = len(smtp.messages)
    airflow.cli("dags", "unpause", "steppewatch_backfill")
    conf = {"sites": FIXTURE_SITES, "start": "2024-12-01", "end": "2024-12-07", "send_alerts": True}
    airflow.cli("dags", "trigger", "steppewatch_backfill", "--conf", json.dumps(conf))
    airflow.wait_runs("steppewatch_backfill", 1, timeout=600)
    days = airflow.query("select rendered_map_index, hostname from task_instance "
                         "where dag_id = 'steppewatch_backfill' and task_id like 'crawl_day.%' and map_index >= 0")
    assert len(days) == 28 and {h for _, h in days} == set(WORKERS)
    assert "kazinfo 2024-12-05" in {label for label, _ in days}

    records = [r for s in FIXTURE_SITES for r in stored(celery, "articles", s)]
    aliases = [r for s in FIXTURE_SITES for r in stored(celery, "aliases", s)]
    urls = [r["canonical_url"] for r in records + aliases]
    assert len(urls) == len(set(urls)), "no article stored twice"
    # every fixture article is dated, by its page or (kazinfo's undated page) by its feed entry
    golden = {a["url"] for s in FIXTURE_SITES for a in GOLDEN[s]["articles"]}
    assert set(urls) == golden
    index = sa.create_engine(celery["index_url"])
    with index.connect() as conn:
        indexed = conn.execute(sa.text("select site, count(*) from articles group by site")).all()
        assert sum(n for site, n in indexed if site in FIXTURE_SITES) == len(records) + len(aliases)
        outbox = dict(conn.execute(sa.text("select status, count(*) from alert_outbox group by status")).all())
    index.dispose()
    assert set(outbox) <= {"sent", "held"} and outbox.get("sent", 0) > 0, outbox

    new = smtp.parsed()[before_subjects:]
    rules = [m["Subject"].split(":")[0] for m in new]
    assert rules and len(rules) == len(set(rules)), f"one summary per rule: {[m['Subject'] for m in new]}"
    assert all("stories, 2024-12-0" in m["Subject"] for m in new)
