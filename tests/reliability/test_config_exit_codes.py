"""One configuration, honest exit codes: a malformed setting, an unreachable index, every
source failing and a crawl stopped by a signal each end in one line and their own exit code,
and the Airflow task decides by that code whether to retry.

Each command runs in a subprocess, as an operator or the Airflow task runs it; the
configuration is read in ``steppewatch/config.py`` (and the Airflow glue) and nowhere else.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from steppewatch.errors import EXIT_CODES, ExitCode
from steppewatch.replay import ReplayServer
from tests.conftest import free_port
from tests.reliability.helpers import (
    FAST,
    ROOT,
    SINCE,
    UNTIL,
    SiteSpec,
    assert_store_and_index_agree,
    crawl,
    local_records,
    stored_count,
    write_registry,
    write_site,
)

SECRET = "pa/ss@w0rd:x"
WINDOW = ("--since", "2024-12-01", "--until", "2024-12-08")


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steppewatch.cli", *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The command's error: one ``steppewatch: error:`` line, no traceback, no piece of the password."""
    output = proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "pa/ss" not in output and "w0rd" not in output, output[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("steppewatch: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("STEPPEWATCH_SCRAPY_SETTINGS", '{"DOWNLOAD_DELAY": 2', "is not a JSON object"),
    ("STEPPEWATCH_SCRAPY_SETTINGS", "[1, 2]", "must be a JSON object"),
    ("STEPPEWATCH_SMTP_URL", f"smtp://desk:{SECRET}@mail.example.org:notaport", "smtp://desk:***@"),
    ("STEPPEWATCH_HEALTH_EMPTY_RUNS", "six", "must be a whole number"),
    ("STEPPEWATCH_INDEX_URL", f"postgresql+psycopg://sw:{SECRET}@db:notaport/sw", "port that is not a number: "
                                                                                 "'postgresql+psycopg://sw:***@"),
    ("STEPPEWATCH_PROXY", "socks5://127.0.0.1:1080", "must be http:// or https://"),
    ("STEPPEWATCH_STORE", "s3://", "has no bucket"),
])
def test_a_malformed_setting_is_one_line_naming_it_and_exit_2_from_every_command(
        tmp_path: Path, variable: str, value: str, says: str) -> None:
    """A malformed STEPPEWATCH_SCRAPY_SETTINGS made every command exit 1 with a traceback (the
    configuration was read outside the CLI's error handling), and exit 1 also meant "every
    source failed", which the Airflow task took for success."""
    env = {"STEPPEWATCH_STORE": str(tmp_path / "store"), "STEPPEWATCH_INDEX_URL": f"sqlite:///{tmp_path}/i.sqlite",
           "STEPPEWATCH_OUTBOX_DIR": str(tmp_path / "outbox"), variable: value}
    for command in (("sites",), ("crawl", "--all", *WINDOW), ("alerts", "send"), ("reindex",)):
        proc = cli(*command, env=env)
        line = one_error_line(proc)
        assert proc.returncode == ExitCode.CONFIG, (command, proc.stderr[-2000:])
        assert variable in line and says in line, (command, line)
    assert not [p.name for p in tmp_path.iterdir()], "nothing was started"


@pytest.mark.parametrize("command", [("reindex",), ("alerts", "send"), ("alerts", "match", *WINDOW), ("status",),
                                     ("reprocess", *WINDOW)])
def test_commands_with_the_index_unreachable_exit_3_naming_it_redacted(tmp_path: Path,
                                                                        command: tuple[str, ...]) -> None:
    """`reindex` and `alerts send` with the index unreachable printed a raw traceback."""
    port = free_port()  # nothing listens there
    env = {"STEPPEWATCH_STORE": str(tmp_path / "store"), "STEPPEWATCH_OUTBOX_DIR": str(tmp_path / "outbox"),
           "STEPPEWATCH_INDEX_URL": f"postgresql+psycopg://sw:{SECRET}@127.0.0.1:{port}/sw"}
    proc = cli(*command, env=env)
    line = one_error_line(proc)
    assert proc.returncode == ExitCode.UNAVAILABLE, proc.stderr[-2000:]
    assert f"index postgresql+psycopg://sw:***@127.0.0.1:{port}/sw unavailable" in line, line
    assert line.endswith("run again when it is back"), line


def test_a_crawl_whose_every_source_failed_exits_4_not_1(tmp_path: Path) -> None:
    """Exit 1 meant both "every source failed" and "crashed with a traceback"."""
    entry = write_site(tmp_path / "sites", SiteSpec("down.test", "down", articles=2,
                                                    feed_route={"status": 503}))
    registry = write_registry(tmp_path / "sites.yaml", [entry])
    with ReplayServer(tmp_path / "sites") as server:
        run = crawl(registry, str(tmp_path / "store"), f"sqlite:///{tmp_path}/i.sqlite", server.url,
                    extra=["RETRY_TIMES=0"])
    assert run.returncode == ExitCode.SOURCES_FAILED, run.stderr[-3000:]
    assert run.summary is not None and run.summary["totals"]["sites_all_sources_failed"] == ["down"]
    assert "every source of every site failed (down)" in run.stderr and "Traceback" not in run.stderr
    assert run.summary["manifest"], "the run is recorded all the same"


@pytest.mark.parametrize(("signum", "processes"), [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 2)])
def test_a_crawl_stopped_by_a_signal_exits_5_says_so_and_a_rerun_of_the_window_completes(
        tmp_path: Path, signum: signal.Signals, processes: int) -> None:
    """SIGTERM (or Ctrl-C) mid-crawl exited 0 with 21 of 30 articles stored and no word that the
    run was incomplete. Article pages after the first are held by the server (slow pages)
    until the signal has been sent, so the crawl is stopped with most of its window unfetched.
    With ``--processes 2`` the signal reaches the parent, which passes it on to its shards."""
    articles = 8
    entry = write_site(tmp_path / "sites", SiteSpec("slow.test", "slow", articles=articles))
    registry = write_registry(tmp_path / "sites.yaml", [entry])
    store, index = str(tmp_path / "store"), f"sqlite:///{tmp_path}/i.sqlite"
    release = threading.Event()
    answered: list[str] = []
    lock = threading.Lock()

    def slow_articles(host: str, target: str) -> None:
        if not target.startswith("/news/"):
            return
        with lock:
            first = not answered
            answered.append(target)
        if not first:
            release.wait(120)  # a bound for a broken test, never reached when it works

    with ReplayServer(tmp_path / "sites", on_request=slow_articles) as server:
        args = [sys.executable, "-m", "steppewatch.cli", "crawl", "--all", "--since", SINCE, "--until", UNTIL,
                "--json", "--processes", str(processes)]
        # the downloader takes in at most this many requests (Scrapy finishes the ones it holds)
        for setting in [*FAST, "CONCURRENT_REQUESTS=2"]:
            args += ["--set", setting]
        env = dict(os.environ, STEPPEWATCH_SITES=str(registry), STEPPEWATCH_STORE=store,
                   STEPPEWATCH_INDEX_URL=index, STEPPEWATCH_PROXY=server.url)
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while stored_count(index) < 1 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, "the crawl ended before the signal"
            proc.send_signal(signum)
        finally:
            release.set()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == ExitCode.INCOMPLETE, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        line = next(line for line in err.splitlines() if line.startswith("steppewatch: error:"))
        assert "the run is incomplete" in line and "run the same window again" in line, line
        summary: dict[str, Any] = json.loads(out)
        partial = summary["totals"]["stored"]
        assert 1 <= partial < articles and summary["sites"]["slow"]["finish_reason"] == "shutdown"
        assert summary["manifest"], "the manifest is written as for any run"
        manifest = json.loads((Path(store) / summary["manifest"]).read_text("utf-8"))
        assert manifest["counts"]["slow"]["finish_reason"] == "shutdown" and len(manifest["keys_written"]) >= partial
        assert assert_store_and_index_agree(store, index)["records"] == partial, "what was stored stays stored"

        rerun = crawl(registry, store, index, server.url)
    assert rerun.returncode == ExitCode.OK, rerun.stderr[-3000:]
    assert rerun.summary is not None and rerun.summary["totals"]["stored"] == articles - partial
    assert assert_store_and_index_agree(store, index)["records"] == articles
    assert sorted(r["canonical_url"] for r in local_records(Path(store))) == sorted(
        SiteSpec("slow.test", "slow", articles=articles).article_urls()), "every article stored once"


# -- the Airflow task decides by the exit code ---------------------------------------------------
def _completed(code: int, stdout: str = "", stderr: str = "") -> Any:
    from steppewatch.relay import Finished

    return lambda command, env, logger, **kw: Finished(code, stdout, stderr)


@pytest.mark.parametrize(("code", "retried"), [
    (ExitCode.CONFIG, False), (ExitCode.UNAVAILABLE, True), (ExitCode.SOURCES_FAILED, False),
    (ExitCode.INCOMPLETE, True), (ExitCode.REJECTED, False), (1, True), (-signal.SIGKILL, True),
])
def test_the_airflow_task_maps_each_exit_code(monkeypatch: pytest.MonkeyPatch, code: int, retried: bool) -> None:
    """The task accepted exit 1 as success and then died on an empty JSON; every non-zero code
    now fails it, retryable (AirflowException) or not (AirflowFailException) by what it means."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from steppewatch import airflow_tasks, relay

    monkeypatch.setattr(relay, "run_relayed", _completed(code, "", "steppewatch: error: what went wrong"))
    with pytest.raises(AirflowException, match="what went wrong") as raised:
        airflow_tasks.run_cli("crawl", "s", env={})
    assert isinstance(raised.value, AirflowFailException) is not retried
    assert raised.value.exit_code == code  # type: ignore[attr-defined]
    monkeypatch.setattr(relay, "run_relayed", _completed(ExitCode.OK, '{"ok": 1}'))
    assert airflow_tasks.run_cli("alerts", "send", env={}) == '{"ok": 1}'


def test_every_source_failed_fails_the_crawl_task_after_the_health_is_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 4 fails the crawl task without retry, once the site's incident is recorded and ops
    are told (as the health task records a crawl that succeeded)."""
    from airflow.sdk.exceptions import AirflowFailException

    from steppewatch import airflow_tasks
    from steppewatch.health import site_health

    index = f"sqlite:///{tmp_path}/i.sqlite"
    env = {"STEPPEWATCH_INDEX_URL": index, "STEPPEWATCH_OUTBOX_DIR": str(tmp_path / "outbox"),
           "STEPPEWATCH_OPS_RECIPIENTS": "ops@example.org"}
    monkeypatch.setattr(airflow_tasks, "task_env", lambda base=None: dict(env))
    source = {"url": "http://s.test/rss", "kind": "feed", "status": 503, "items": 0, "error": "http_503"}
    counts = dict.fromkeys(("discovered", "fetched", "stored", "out_of_window", "keys_written"), 0)
    summary = {"run_id": "r1", "since": "2024-12-01T00:00:00+00:00", "until": "2024-12-01T01:00:00+00:00",
               "manifest": "runs/r1.json",
               "sites": {"s": {**counts, "rejected": {}, "errors": {}, "source_errors": {"http_503": 1},
                               "all_sources_failed": True, "sources": [source]}}}
    from steppewatch import relay

    monkeypatch.setattr(relay, "run_relayed", _completed(ExitCode.SOURCES_FAILED, json.dumps(summary)))
    with pytest.raises(AirflowFailException, match="incident sources_failing open.*ops told: ops@example.org"):
        airflow_tasks.crawl_window("s", "2024-12-01T00:00:00Z", "2024-12-01T01:00:00Z", record_health=True)
    engine = sa.create_engine(index)
    with engine.connect() as conn:
        assert conn.execute(sa.select(site_health.c.incident).where(site_health.c.site == "s")).scalar() == \
            "sources_failing"
    engine.dispose()
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    with pytest.raises(AirflowFailException, match="every source failed"):  # a backfill records nothing
        airflow_tasks.crawl_window("s", "2024-12-01T00:00:00Z", "2024-12-01T01:00:00Z", mode="backfill")


# -- one configuration ----------------------------------------------------------------------------
ENVIRONMENT_READERS = {"steppewatch/config.py", "steppewatch/airflow_tasks.py", "steppewatch/airflow_local.py"}


def environment_reads(path: Path) -> list[int]:
    """Lines of ``path`` that read the process environment (``os.environ``, ``os.getenv`` and kin)."""
    names = {"environ", "environb", "getenv", "getenvb"}
    lines = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in names and isinstance(node.value, ast.Name) \
                and node.value.id == "os":
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and {a.name for a in node.names} & names:
            lines.append(node.lineno)
    return lines


def test_the_environment_is_read_only_by_the_configuration_and_the_airflow_glue() -> None:
    """About 18 reads of os.environ in 10 modules, one at import time: each module could
    disagree with the others, and a bad value failed wherever it was first read."""
    found = {}
    for top in ("steppewatch", "spiders", "pipelines", "dags"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ENVIRONMENT_READERS or rel.startswith("dags/"):
                continue
            if lines := environment_reads(path):
                found[rel] = lines
    assert found == {}, f"read the configuration in steppewatch/config.py and pass it down: {found}"
    probe = ROOT / "steppewatch" / "config.py"
    assert environment_reads(probe), "the check finds the reads it is meant to find"


def test_the_dags_and_their_tasks_read_the_same_registry(tmp_path: Path) -> None:
    """The DAG files read the registry from STEPPEWATCH_SITES while the tasks read the
    steppewatch_sites Variable: Airflow showed DAGs for one registry and crawled another."""
    from_env = write_registry(tmp_path / "env.yaml", [write_site(tmp_path / "s", SiteSpec("a.test", "alpha"))])
    from_variable = write_registry(tmp_path / "var.yaml", [write_site(tmp_path / "s", SiteSpec("b.test", "beta"))])
    code = (
        "import json, runpy\n"
        "from steppewatch.airflow_tasks import task_env\n"
        "dags = sorted(k for k, v in runpy.run_path('dags/steppewatch_sites.py').items() if k.startswith('steppewatch_')"
        " and hasattr(v, 'dag_id'))\n"
        "backfill = runpy.run_path('dags/steppewatch_backfill.py')['SITES']\n"
        "print(json.dumps({'dags': dags, 'backfill': backfill, 'task': task_env()['STEPPEWATCH_SITES']}))\n"
    )
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__LOAD_EXAMPLES="false",
               STEPPEWATCH_SITES=str(from_env), AIRFLOW_VAR_STEPPEWATCH_SITES=str(from_variable))
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"dags": ["steppewatch_beta"], "backfill": ["beta"], "task": str(from_variable)}


def test_config_round_trips_through_the_environment_of_a_subprocess() -> None:
    from steppewatch.config import Config

    given = {"STEPPEWATCH_STORE": "s3://b/p", "STEPPEWATCH_INDEX_URL": f"postgresql+psycopg://sw:{SECRET}@db/sw",
             "STEPPEWATCH_SITES": "/etc/sw/sites.yaml", "STEPPEWATCH_ALERTS": "/etc/sw/alerts.yaml",
             "STEPPEWATCH_SMTP_URL": "smtps://desk:pw@mail.example.org:465", "STEPPEWATCH_OUTBOX_DIR": "/var/mail",
             "STEPPEWATCH_MAIL_FROM": "sw@example.org", "STEPPEWATCH_OPS_RECIPIENTS": "a@example.org, b@example.org",
             "STEPPEWATCH_HEALTH_EMPTY_RUNS": "3", "STEPPEWATCH_USER_AGENT": "bot/1 (+https://example.org)",
             "STEPPEWATCH_PROXY": "http://p:3128", "STEPPEWATCH_SCRAPY_SETTINGS": '{"DOWNLOAD_DELAY": 2}',
             "STEPPEWATCH_AIRFLOW_PORT": "8081"}
    config = Config.from_env(given)
    assert config.ops_recipients == ("a@example.org", "b@example.org") and config.health_empty_runs == 3
    assert config.scrapy == {"DOWNLOAD_DELAY": 2} and config.airflow_port == 8081
    assert Config.from_env(config.to_env({"PATH": "/bin"})) == config
    assert config.to_env({"PATH": "/bin"})["PATH"] == "/bin"
    assert "STEPPEWATCH_PROXY" not in Config().to_env({"STEPPEWATCH_PROXY": "http://stale:1"})


def test_the_exit_codes_are_documented_once_in_help_and_readme() -> None:
    proc = subprocess.run([sys.executable, "-m", "steppewatch.cli", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    readme = (ROOT / "README.md").read_text("utf-8")
    for code, text in EXIT_CODES:
        assert f"  {int(code)}  {text}" in proc.stdout, proc.stdout
        assert f"| {int(code)} | `{code.name}` |" in readme, code
    assert ExitCode.USAGE is ExitCode.CONFIG
