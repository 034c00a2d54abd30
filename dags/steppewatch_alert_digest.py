"""Send digest alert rules when their periods end (each rule's own cron and time zone).

Runs every 15 minutes; ``steppewatch alerts send`` sends each digest once per period and
any immediate alert still pending (after an SMTP outage, say).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, task

with DAG(
    dag_id="steppewatch_alert_digest",
    description="Send digest alerts on their schedules, and anything left pending",
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": pendulum.duration(minutes=1), "retry_exponential_backoff": True},
    tags=["steppewatch", "alerts"],
):

    @task
    def send_digests() -> dict:
        from steppewatch.airflow_tasks import send_alerts

        return send_alerts()

    send_digests()
