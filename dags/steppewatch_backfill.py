"""Operator backfills from the UI: sites × days, one mapped task per (site, day).

Trigger with the form (sites from the registry, start and end dates, ``send_alerts``,
``reprocess``). Each (site, day) is its own mapped task instance, named by
``map_index_template``, so a month for three sites shows every day and one failed day
can be cleared and retried alone. Matches are recorded without e-mail; with
``send_alerts`` they collect under this run's batch and one summary per rule is sent
when every day is done (all_done: the days that did finish are summarised even if one
failed; clearing that day and ``send_summary`` later sends what it adds).

One crawl per domain at a time across DAGs (steppewatch/pools.py): a mapped task cannot
take a pool per item, so ``crawl_day`` is a task group holding, per domain pool, a mapped
task in that pool and the small ``days_<pool>`` task that hands it its (site, day) items
(a mapped task expands only over a whole return value); most pools get none and skip.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, TaskGroup, get_current_context, task

from steppewatch.airflow_tasks import site_registry
from steppewatch.pools import pool_task_id, site_pools

# the registry the tasks crawl with (the steppewatch_sites Variable, else STEPPEWATCH_SITES)
_registry = site_registry()
SITES = sorted(site.id for site in _registry.sites)
POOLS = sorted(set(site_pools(_registry).values()))

with DAG(
    dag_id="steppewatch_backfill",
    description="Backfill sites over past days from the trigger form",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=2), "retry_exponential_backoff": True},
    tags=["steppewatch", "backfill"],
    params={
        "sites": Param([], type="array", items={"type": "string", "enum": SITES}, examples=SITES,
                       title="Sites", description="Registry sites to backfill"),
        "start": Param(pendulum.yesterday("UTC").to_date_string(), type="string", format="date",
                       title="First day (UTC)"),
        "end": Param(pendulum.yesterday("UTC").to_date_string(), type="string", format="date",
                     title="Last day (UTC), inclusive"),
        "send_alerts": Param(False, type="boolean", title="Send one alert summary per rule"),
        "reprocess": Param(False, type="boolean", title="Fetch and store again articles already stored"),
    },
    render_template_as_native_obj=True,
):

    @task
    def plan_days(params=None) -> dict[str, list[dict]]:  # noqa: ANN001
        from steppewatch.airflow_tasks import backfill_days
        from steppewatch.pools import split_by_pool

        return split_by_pool(backfill_days(list(params["sites"]), params["start"], params["end"]), site_registry())

    @task
    def pool_days(plan: dict[str, list[dict]], pool: str) -> list[dict]:
        return plan[pool]

    @task(map_index_template="{{ item_label }}", max_active_tis_per_dag=4)
    def crawl_day(item: dict, params=None) -> dict:  # noqa: ANN001
        from steppewatch.airflow_tasks import crawl_window, match_alerts

        context = get_current_context()
        context["item_label"] = f"{item['site']} {item['day']}"
        start = pendulum.parse(item["day"])
        crawled = crawl_window(item["site"], start, start.add(days=1), reprocess=bool(params["reprocess"]),
                               mode="backfill")
        batch = f"{context['dag_run'].dag_id}/{context['dag_run'].run_id}" if params["send_alerts"] else None
        matched = match_alerts(crawled["run_id"], backfill=True, summary_batch=batch)
        return {"site": item["site"], "day": item["day"], "stored": crawled["stored"],
                "fetched": crawled["fetched"], "new_matches": matched.get("new_matches", 0)}

    @task(trigger_rule="all_done")
    def send_summary(per_pool: list, params=None) -> dict:  # noqa: ANN001
        from steppewatch.airflow_tasks import send_alerts

        results = [r for pool_results in per_pool if pool_results for r in pool_results]
        totals = {"days": len(results), "stored": sum(r["stored"] for r in results if r)}
        if params["send_alerts"]:
            run = get_current_context()["dag_run"]
            totals["sent"] = send_alerts(release=f"{run.dag_id}/{run.run_id}")
        return totals

    plan = plan_days()
    with TaskGroup("crawl_day", tooltip="one mapped task per domain pool: one crawl per domain at a time"):
        crawled = [crawl_day.override(task_id=pool_task_id(pool), pool=pool).expand(
            item=pool_days.override(task_id=f"days_{pool_task_id(pool)}")(plan, pool)) for pool in POOLS]
    send_summary(crawled)
