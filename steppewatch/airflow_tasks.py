"""What the Airflow tasks do, kept out of the DAG files so that parsing them stays light.

Each crawl runs the CLI in a subprocess, so every crawl has its own Twisted reactor;
tasks return small summaries (counts, a run id, a manifest key) for XCom, never article
bodies. Configuration comes from Airflow where it exists and from the environment
otherwise: Variables ``steppewatch_store``, ``steppewatch_index_url``,
``steppewatch_sites``, ``steppewatch_alerts``, ``steppewatch_ops_recipients``; connections ``aws_default`` (login and
password as the access key pair, ``endpoint_url`` and ``region_name`` in extras) and
``smtp_default`` (host, port, login, password; extra ``ssl: true`` for implicit TLS).
Secrets travel to the subprocess in its environment, never on its command line.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from steppewatch.windows import WindowMode

log = logging.getLogger(__name__)

CRAWL_MODES = tuple(mode.value for mode in WindowMode)

VARIABLES = {
    "steppewatch_store": "STEPPEWATCH_STORE",
    "steppewatch_index_url": "STEPPEWATCH_INDEX_URL",
    "steppewatch_sites": "STEPPEWATCH_SITES",
    "steppewatch_alerts": "STEPPEWATCH_ALERTS",
    "steppewatch_ops_recipients": "STEPPEWATCH_OPS_RECIPIENTS",
}


def _variable(name: str) -> str | None:
    try:
        from airflow.sdk import Variable

        return Variable.get(name, default=None)
    except Exception:  # noqa: BLE001 — outside a task, or no such variable
        return None


def _connection(conn_id: str) -> Any | None:
    try:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 — not defined: the environment decides
        return None


def task_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a steppewatch subprocess: os.environ, Variables, connections."""
    env = dict(os.environ if base is None else base)
    for variable, key in VARIABLES.items():
        value = _variable(variable)
        if value:
            env[key] = value
    aws = _connection("aws_default")
    if aws is not None:
        extra = aws.extra_dejson or {}
        if aws.login and aws.password:
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = aws.login, aws.password
        if extra.get("endpoint_url"):
            env["AWS_ENDPOINT_URL"] = extra["endpoint_url"]
        if extra.get("region_name"):
            env["AWS_DEFAULT_REGION"] = extra["region_name"]
    smtp = _connection("smtp_default")
    if smtp is not None and smtp.host:
        extra = smtp.extra_dejson or {}
        scheme = "smtps" if str(extra.get("ssl", "")).lower() in ("true", "1") else "smtp"
        auth = f"{quote(smtp.login, safe='')}:{quote(smtp.password or '', safe='')}@" if smtp.login else ""
        env["STEPPEWATCH_SMTP_URL"] = f"{scheme}://{auth}{smtp.host}:{smtp.port or 25}"
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 3 * 3600) -> str:
    """Run ``steppewatch ARGS`` in a subprocess; raise with its stderr tail if it fails."""
    proc = subprocess.run([sys.executable, "-m", "steppewatch.cli", *args], capture_output=True, text=True,
                          env=env or task_env(), timeout=timeout)
    sys.stderr.write(proc.stderr[-20000:])  # the crawl log, into the task log
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"steppewatch {args[0]} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def _fail_now(message: str) -> Exception:
    """An error that fails the task without retries: a bad window is as bad on every try."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(message)


def _when(value: Any, name: str) -> datetime:
    """An aware UTC datetime from a datetime or an ISO 8601 string (naive means UTC, as in the CLI)."""
    if isinstance(value, str) and value.strip() and value.strip() != "None":
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _fail_now(f"{name}: not an ISO 8601 date or datetime: {value!r}") from None
    if not isinstance(value, datetime):
        raise _fail_now(f"{name}: expected a datetime, got {value!r}")
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _window(since: Any, until: Any, what: str) -> tuple[datetime, datetime]:
    start, end = _when(since, f"{what} start"), _when(until, f"{what} end")
    if start >= end:
        raise _fail_now(f"{what} [{start.isoformat()}, {end.isoformat()}) is empty: its start is not before its end")
    return start, end


def _core_timetable(timetable: Any) -> Any:
    """The scheduler's form of a DAG's timetable (the one that infers manual data intervals)."""
    if hasattr(timetable, "infer_manual_data_interval"):
        return timetable
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(timetable)


def run_window(timetable: Any, data_interval_start: Any, data_interval_end: Any,
               run_after: Any) -> tuple[datetime, datetime]:
    """The window a site DAG run crawls, logged with the reason it was chosen.

    A run with a data interval (scheduled, backfilled, or triggered with a logical date)
    crawls it. A run triggered without a logical date (REST API, ``airflow dags trigger``)
    has none in Airflow 3: it crawls the last complete schedule interval before its
    ``run_after``, as the DAG's timetable infers it for manual runs (hourly: the previous
    full hour). A malformed interval fails the task at once instead of retrying.
    """
    if data_interval_start is not None or data_interval_end is not None:
        if data_interval_start is None or data_interval_end is None:
            raise _fail_now(f"the run's data interval has one end only: start={data_interval_start!r}, "
                            f"end={data_interval_end!r}")
        since, until = _window(data_interval_start, data_interval_end, "the run's data interval")
        log.info("crawling the run's data interval [%s, %s)", since.isoformat(), until.isoformat())
        return since, until
    if run_after is None:
        raise _fail_now("the run has neither a data interval nor a run_after to infer one from")
    import pendulum

    after = pendulum.instance(_when(run_after, "run_after"))
    core = _core_timetable(timetable)
    inferred = core.infer_manual_data_interval(run_after=after)
    since, until = _window(inferred.start, inferred.end, f"the interval inferred from schedule {core.summary!r}")
    if until > after:
        raise _fail_now(f"the interval inferred from schedule {core.summary!r}, [{since.isoformat()}, "
                        f"{until.isoformat()}), ends after the run's run_after {after.isoformat()}")
    log.info("the run has no data interval (triggered without a logical date): crawling the last complete "
             "interval of schedule %r before its run_after %s: [%s, %s)", core.summary, after.isoformat(),
             since.isoformat(), until.isoformat())
    return since, until


def crawl_window(site: str, since: Any, until: Any, reprocess: bool = False,
                 mode: str = "discover") -> dict[str, Any]:
    """Crawl one site over [since, until); return a small summary for XCom.

    ``mode`` is the CLI's ``--mode``: ``discover`` for scheduled and manually triggered
    runs (the run owns every new URL it discovers), ``backfill`` for backfills (the run
    owns the articles dated in its window).
    """
    if mode not in CRAWL_MODES:
        raise _fail_now(f"mode: expected one of {', '.join(CRAWL_MODES)}, got {mode!r}")
    start, end = _window(since, until, "the crawl window")
    args = ["crawl", site, "--since", start.isoformat(), "--until", end.isoformat(), "--mode", mode, "--json"]
    if reprocess:
        args.append("--reprocess")
    summary = json.loads(run_cli(*args))
    s = summary["sites"][site]
    return {
        "site": site, "run_id": summary["run_id"], "manifest": summary.get("manifest"), "mode": mode,
        "since": summary["since"], "until": summary["until"],
        "discovered": s["discovered"], "fetched": s["fetched"], "stored": s["stored"],
        "out_of_window": s["out_of_window"], "rejected": s["rejected"], "errors": s["errors"],
        "source_errors": s["source_errors"], "all_sources_failed": s["all_sources_failed"],
        "keys_written": s["keys_written"],
        "sources": [{k: src.get(k) for k in ("url", "kind", "status", "items", "error")} for src in s["sources"]],
    }


def match_alerts(run_id: str, backfill: bool = False, summary_batch: str | None = None) -> dict[str, int]:
    """Record the run's matches; a backfill records them held, or collects them under a summary batch."""
    args = ["alerts", "match", "--run", run_id]
    if backfill:
        args.append("--backfill")
        if summary_batch:
            args += ["--summary-batch", summary_batch]
    return json.loads(run_cli(*args))


def send_alerts(release: str | None = None) -> dict[str, Any]:
    """Send what is pending (and due digests), after releasing a finished backfill's summary batch."""
    return json.loads(run_cli("alerts", "send", *(["--release", release] if release else [])))


def check_site_health(crawled: dict[str, Any]) -> dict[str, Any]:
    """Record one run's health; mail ``STEPPEWATCH_OPS_RECIPIENTS`` on incident and recovery.

    An open incident fails the task (no retry: the state is recorded, retrying changes
    nothing), so the run shows red in Airflow whoever reads mail; a recovered site's next
    run is green again.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from steppewatch.config import Config
    from steppewatch.health import check

    env = task_env()
    recipients = [r.strip() for r in env.get("STEPPEWATCH_OPS_RECIPIENTS", "").split(",") if r.strip()]
    result = check(Config.from_env(env).index, crawled, recipients, env=env)
    if result["incident"]:
        raise AirflowFailException(f"site {result['site']}: incident {result['incident']} open "
                                   f"(`steppewatch status` lists it; ops told: {', '.join(recipients) or 'nobody'})")
    return result


def backfill_days(sites: list[str], start: str, end: str) -> list[dict[str, str]]:
    """(site, day) items for [start, end] inclusive, the unit a backfill retries alone."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    if last < first:
        raise ValueError(f"end {end} is before start {start}")
    if not sites:
        raise ValueError("choose at least one site")
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    return [{"site": site, "day": day} for site in sites for day in days]


def is_backfill(context: Any) -> bool:
    run = context.get("dag_run")
    return run is not None and "backfill" in str(getattr(run, "run_type", "")).lower()
