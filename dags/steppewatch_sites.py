"""One DAG per enabled site of the registry: crawl each data interval, alert, check health.

``steppewatch_<site id>`` runs on the site's cron schedule (default hourly) as an
*interval* timetable, so each run covers [data_interval_start, data_interval_end):
Airflow 3's cron presets default to trigger timetables whose intervals are empty.
A run triggered without a logical date (REST API, ``airflow dags trigger``) has no data
interval at all: it crawls the last complete schedule interval before its run_after.
``airflow backfill create --dag-id steppewatch_<site> --from-date … --to-date …``
crawls exactly those intervals (``--mode backfill``) and records alert matches without
e-mailing them; every other run crawls with ``--mode discover``. ``crawl_window`` runs in its
site's domain pool (steppewatch/pools.py): one crawl per domain at a time across DAGs.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, get_current_context, task

from steppewatch.airflow_tasks import site_registry
from steppewatch.pools import site_pools

DEFAULT_ARGS = {
    "owner": "steppewatch",
    "retries": 3,
    "retry_delay": pendulum.duration(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": pendulum.duration(hours=1),
}


def site_dag(site_id: str, country: str, schedule: str, pool: str = "default_pool") -> DAG:
    with DAG(
        dag_id=f"steppewatch_{site_id}",
        description=f"Crawl {site_id} every interval, match and send alerts, watch its health",
        schedule=CronDataIntervalTimetable(schedule, timezone="UTC"),
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        max_active_tasks=4,
        default_args=DEFAULT_ARGS,
        tags=["steppewatch", f"site:{site_id}", f"country:{country}"],
    ) as dag:

        @task(pool=pool)
        def crawl_window(**context) -> dict:  # noqa: ANN003
            from steppewatch.airflow_tasks import crawl_window as crawl
            from steppewatch.airflow_tasks import is_backfill, run_window

            run = context["dag_run"]
            since, until = run_window(context["dag"].timetable, context.get("data_interval_start"),
                                      context.get("data_interval_end"), run.run_after)
            # every source failing fails this task (no retry) once the site's health is recorded,
            # as check_site_health records it after a crawl that succeeds
            return crawl(site_id, since, until, mode="backfill" if is_backfill(context) else "discover",
                         record_health=True)

        @task
        def match_alerts(crawled: dict) -> dict:
            from steppewatch.airflow_tasks import is_backfill, match_alerts

            return match_alerts(crawled["run_id"], backfill=is_backfill(get_current_context()))

        @task
        def send_alerts(matched: dict) -> dict:
            from steppewatch.airflow_tasks import is_backfill, send_alerts

            if is_backfill(get_current_context()):
                return {"skipped": "backfill runs record matches and send nothing"}
            return send_alerts()

        @task
        def check_site_health(crawled: dict) -> dict:
            from steppewatch.airflow_tasks import check_site_health as check

            return check(crawled)

        crawled = crawl_window()
        send_alerts(match_alerts(crawled))
        check_site_health(crawled)
    return dag


# the registry the tasks crawl with (the steppewatch_sites Variable, else STEPPEWATCH_SITES)
_registry = site_registry()
_pools = site_pools(_registry)
for _site in _registry.enabled():
    globals()[f"steppewatch_{_site.id}"] = site_dag(_site.id, _site.country, _site.schedule or "0 * * * *",
                                                    _pools[_site.id])
