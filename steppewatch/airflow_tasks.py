"""What the Airflow tasks do, kept out of the DAG files so that parsing them stays light.

Each crawl runs the CLI in a subprocess, so every crawl has its own Twisted reactor;
tasks return small summaries (counts, a run id, a manifest key) for XCom, never article
bodies. Configuration comes from Airflow where it exists and from the environment
otherwise: Variables ``steppewatch_store``, ``steppewatch_index_url``,
``steppewatch_sites``, ``steppewatch_alerts``, ``steppewatch_ops_recipients``; connections ``aws_default`` (login and
password as the access key pair, ``endpoint_url`` and ``region_name`` in extras) and
``smtp_default`` (host, port, login, password; extra ``ssl: true`` for implicit TLS).
Secrets travel to the subprocess in its environment, never on its command line.

The DAG files and the tasks read the site registry the same way (``registry_path``: the
``steppewatch_sites`` Variable, else ``STEPPEWATCH_SITES``, else the bundled file), so the
DAGs Airflow shows are the sites its tasks crawl. The CLI's exit code decides what a task
does (``cli_failure``): 0 succeeds; 2 (configuration) and 4 (every source failed) fail the
task without retry, the latter after the site's health is recorded; 3 (a service
unreachable) and 5 (interrupted) raise a retryable error, and Airflow's retries run the
same window again.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from steppewatch.errors import ConfigError, ExitCode
from steppewatch.windows import WindowMode

if TYPE_CHECKING:
    from steppewatch.registry import Registry

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


def registry_path(base: dict[str, str] | None = None) -> str:
    """The site registry the DAG files and the tasks both read: the ``steppewatch_sites``
    Variable, else ``STEPPEWATCH_SITES`` (of ``base``, os.environ by default), else the bundled one."""
    from steppewatch.registry import sites_path

    env = os.environ if base is None else base
    return _variable("steppewatch_sites") or env.get("STEPPEWATCH_SITES") or str(sites_path())


def site_registry() -> Registry:
    """The registry at ``registry_path``, for the DAG files (one DAG per enabled site)."""
    from steppewatch.registry import load_registry

    return load_registry(registry_path())


def task_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a steppewatch subprocess: os.environ, Variables, connections."""
    env = dict(os.environ if base is None else base)
    for variable, key in VARIABLES.items():
        value = registry_path(env) if key == "STEPPEWATCH_SITES" else _variable(variable)
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
    """Run ``steppewatch ARGS`` in a subprocess and return its stdout; raise ``cli_failure``'s
    error for any other exit code than 0."""
    from steppewatch.relay import run_relayed

    # the command's log reaches the task log line by line as it runs, each line at its own
    # level (stderr written here would all be ERROR, and only once the crawl had ended)
    done = run_relayed([sys.executable, "-m", "steppewatch.cli", *args], env or task_env(),
                       logging.getLogger("steppewatch.cli"), timeout=timeout)
    failure = cli_failure(" ".join(args[:2]), done.returncode, done.stderr_tail, done.stdout)
    if failure is not None:
        raise failure
    return done.stdout


def cli_failure(command: str, returncode: int, stderr: str = "", stdout: str = "") -> Exception | None:
    """The error a task raises for the CLI's exit code (None for 0), by ``ExitCode``.

    Configuration (2) and every source failed (4) fail the task without retry
    (AirflowFailException: the next try would fail the same way); an unreachable service (3)
    and an interrupted run (5) raise AirflowException, which Airflow retries; any other code
    (a crash, a kill) is retried too. The error carries ``exit_code`` and the CLI's ``stdout``
    (the crawl summary, which exit 4 still prints).
    """
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    if returncode == ExitCode.OK:
        return None
    tail = stderr.strip()[-2000:]
    try:
        code: ExitCode | None = ExitCode(returncode)
    except ValueError:
        code = None
    if code is ExitCode.CONFIG:
        error: Exception = AirflowFailException(
            f"steppewatch {command}: configuration error (exit {returncode}), not retried: {tail}")
    elif code is ExitCode.SOURCES_FAILED:
        error = AirflowFailException(f"steppewatch {command}: every source failed (exit {returncode}): {tail}")
    elif code is ExitCode.UNAVAILABLE:
        error = AirflowException(f"steppewatch {command}: a service is unavailable (exit {returncode}), "
                                 f"retried: {tail}")
    elif code is ExitCode.INCOMPLETE:
        error = AirflowException(f"steppewatch {command}: interrupted (exit {returncode}); the retry runs "
                                 f"the same window again: {tail}")
    elif code is ExitCode.REJECTED:
        error = AirflowFailException(f"steppewatch {command}: a page was rejected (exit {returncode}): {tail}")
    else:
        error = AirflowException(f"steppewatch {command} exited {returncode}: {tail}")
    error.exit_code = returncode  # type: ignore[attr-defined]
    error.stdout = stdout  # type: ignore[attr-defined]
    return error


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
                 mode: str = "discover", record_health: bool = False) -> dict[str, Any]:
    """Crawl one site over [since, until); return a small summary for XCom.

    ``mode`` is the CLI's ``--mode``: ``discover`` for scheduled and manually triggered
    runs (the run owns every new URL it discovers), ``backfill`` for backfills (the run
    owns the articles dated in its window). When every source failed (exit 4) the task
    fails without retry; with ``record_health`` (the site DAG) the site's health is first
    recorded from the run's summary, so the incident is open and ops are told.
    """
    if mode not in CRAWL_MODES:
        raise _fail_now(f"mode: expected one of {', '.join(CRAWL_MODES)}, got {mode!r}")
    start, end = _window(since, until, "the crawl window")
    args = ["crawl", site, "--since", start.isoformat(), "--until", end.isoformat(), "--mode", mode, "--json"]
    if reprocess:
        args.append("--reprocess")
    try:
        out = run_cli(*args)
    except Exception as exc:
        if getattr(exc, "exit_code", None) != ExitCode.SOURCES_FAILED:
            raise
        crawled = crawl_result(site, mode, json.loads(getattr(exc, "stdout", "")))
        log.error("every source of %s failed: %s", site, json.dumps(crawled["sources"], ensure_ascii=False))
        if record_health:
            check_site_health(crawled)  # an incident is open: this raises AirflowFailException naming it
        raise
    return crawl_result(site, mode, json.loads(out))


def crawl_result(site: str, mode: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The XCom of ``crawl_window``: one site's counts of a crawl summary, its window and sources."""
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

    from steppewatch.alerts.mail import mailer_for
    from steppewatch.config import Config
    from steppewatch.health import check

    try:
        config = Config.from_env(task_env())
    except ConfigError as exc:
        raise _fail_now(str(exc)) from None
    recipients = list(config.ops_recipients)
    result = check(config.index, crawled, recipients, mailer_for(config.smtp_url, config.outbox_dir, config.mail_from),
                   config.health_empty_runs)
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
