"""Real Airflow processes for the end-to-end tests: start, wait on the metadata DB, stop.

Each process is started in its own session, so stopping it ends its whole process group
(``airflow standalone`` and Celery workers leave children behind otherwise). The metadata
database is read with SQLAlchemy, whether it is SQLite (standalone) or PostgreSQL (Celery).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("VIRTUAL_ENV") or ROOT / ".venv") / "bin"

TOPICS = [
    ("Astana talks on Syria resume after a long pause",
     "Delegations of the guarantor states met again for the Astana talks on Syria. "),
    ("Almaty opens a new cycling lane network", "The city of Almaty opened forty kilometres of protected lanes. "),
    ("Kyrgyz exporters ship record volumes of cherries", "Farmers in the south shipped cherries by rail. "),
    ("Dushanbe hosts a water conference", "Ministers from the region discussed glacier melt and irrigation. "),
    ("Turkmen gas sales to China grow", "Pipeline deliveries rose in the third quarter, officials said. "),
    ("Uzbekistan launches a digital tax portal", "Small businesses can now file returns online. "),
]


def live_site(root: Path, host: str, now: datetime, topics: list[tuple[str, str]] = TOPICS,
              first_minutes: int = 25, step_minutes: int = 30) -> list[dict]:
    """A small English site on ``host`` whose articles were published over the last hours.

    Two sites given the same topic carry the same text: a syndicated copy.
    """
    site = root / host
    (site / "news").mkdir(parents=True)
    (site / "robots.txt").write_text("User-agent: *\nDisallow: /admin/\n")
    items, articles = [], []
    for n, (title, lead) in enumerate(topics):
        published = now - timedelta(minutes=first_minutes + step_minutes * n)
        url = f"http://{host}/news/{n}/"
        body = "".join(f"<p>{lead}Paragraph {p} adds details on {title.lower()} and what happens next "
                       f"for the people involved in it.</p>" for p in range(6))
        (site / "news" / str(n)).mkdir()
        (site / "news" / str(n) / "index.html").write_text(
            f'<html lang="en"><head><title>{title}</title><meta property="og:type" content="article">'
            f'<link rel="canonical" href="{url}"><meta property="article:published_time" '
            f'content="{published.isoformat()}"></head><body><article><h1>{title}</h1>{body}</article>'
            f"</body></html>", "utf-8")
        items.append(f"<item><title>{title}</title><link>{url}</link>"
                     f"<pubDate>{published.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item>")
        articles.append({"url": url, "title": title, "published": published})
    (site / "feed.xml").write_text(f"<rss version='2.0'><channel><title>{host}</title>{''.join(items)}"
                                   f"</channel></rss>")
    return articles


def live_registry_entry(site_id: str, host: str) -> dict:
    return {"id": site_id, "name": host, "country": "KZ", "languages": ["en"], "allowed_domains": [host],
            "timezone": "UTC", "feeds": [{"url": f"http://{host}/feed.xml"}]}


def utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


class Airflow:
    """Airflow processes sharing one AIRFLOW_HOME and one metadata database."""

    def __init__(self, home: Path, env: dict[str, str], db_url: str) -> None:
        self.home, self.env = home, env
        self.engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 — lives as long as the process
        self.procs[name] = subprocess.Popen([str(BIN / "airflow"), *args], env=self.env, cwd=self.home,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        groups = []
        for proc in self.procs.values():
            try:
                groups.append(os.getpgid(proc.pid))
            except ProcessLookupError:
                continue
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)  # children that outlived their parent
            except ProcessLookupError:
                pass
        # task processes that started sessions of their own are found by their AIRFLOW_HOME
        deadline = time.monotonic() + 60
        while (stray := self.leftovers()) and time.monotonic() < deadline:
            for pid in stray:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.5)
        self.engine.dispose()

    def leftovers(self) -> list[str]:
        """Processes still running from this AIRFLOW_HOME: by environment, or by process group
        (a process that sets its title with setproctitle, as the API server, serve-logs and the
        LocalExecutor's workers do, overwrites the memory /proc/PID/environ shows)."""
        groups = {proc.pid for proc in self.procs.values()}  # each was started as its own session
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                pgid = os.getpgid(int(pid))
            except (OSError, ProcessLookupError):
                continue
            ours = f"AIRFLOW_HOME={self.home}".encode() in environ.split(b"\0") or pgid in groups
            if ours and not _zombie(pid):
                found.append(pid)
        return found

    # commands that may be repeated after "database is locked" without doing anything twice
    IDEMPOTENT = {("dags", "pause"), ("dags", "unpause")}

    def cli(self, *args: str) -> str:
        # `backfill create` and `dags trigger` are never retried: a lock error after their first
        # commit leaves a backfill or run behind, and a retry would hide it (AlreadyRunningBackfill)
        attempts = 3 if tuple(args[:2]) in self.IDEMPOTENT else 1
        for _attempt in range(attempts):
            proc = subprocess.run([str(BIN / "airflow"), *args], env=self.env, cwd=self.home, capture_output=True,
                                  text=True, timeout=300)
            if proc.returncode == 0 or "database is locked" not in proc.stderr:  # SQLite under the scheduler
                break
            time.sleep(2)
        assert proc.returncode == 0, f"airflow {' '.join(args)}: {proc.stderr[-3000:]}"
        return proc.stdout

    def backfill_create(self, dag_id: str, *args: str) -> int:
        """``airflow backfill create``, again after "database is locked" once it is safe.

        Airflow commits the backfill row before creating its runs and removes it when a lock
        error interrupts that (best effort); a retry must wait until no half-made backfill
        of this DAG is still open (the scheduler completes one it could not remove), or it
        meets AlreadyRunningBackfill. Returns the id of the backfill created.
        """
        for _attempt in range(5):
            before = self.query("select coalesce(max(id), 0) from backfill where dag_id = :d", d=dag_id)[0][0]
            proc = subprocess.run([str(BIN / "airflow"), "backfill", "create", "--dag-id", dag_id, *args],
                                  env=self.env, cwd=self.home, capture_output=True, text=True, timeout=300)
            if proc.returncode == 0 or "database is locked" not in proc.stderr:
                break
            self.wait("a half-made backfill to be removed or completed", lambda before=before: not self.query(
                "select id from backfill where dag_id = :d and id > :b and completed_at is null", d=dag_id, b=before),
                timeout=300)
        assert proc.returncode == 0, f"airflow backfill create {dag_id}: {proc.stderr[-3000:]}"
        # the backfill this call made: a half-made one of an earlier attempt (runless, then marked
        # complete by the scheduler) has a smaller id
        return self.query("select max(id) from backfill where dag_id = :d", d=dag_id)[0][0]

    def query(self, sql: str, **params: Any) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), params)]

    def log_tail(self, chars: int = 4000) -> str:
        # the dag-processor re-parses every few seconds and would fill the tail on its own
        tails = []
        for path in sorted(self.home.glob("*.log")):
            lines = [line for line in path.read_text(errors="replace").splitlines()
                     if not line.startswith("dag-processor")]
            tails.append(f"--- {path.name}\n" + "\n".join(lines)[-chars:])
        return "\n".join(tails)

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 300,
             detail: Callable[[], str] | None = None) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                result = check()
            except (sa.exc.OperationalError, sa.exc.ProgrammingError, OSError):  # not up yet: the DB, a port
                result = None
            if result:
                return result
            for name, proc in self.procs.items():
                assert proc.poll() is None, f"airflow {name} exited {proc.returncode}\n{self.log_tail()}"
            time.sleep(2)
        state = ""
        if detail is not None:
            try:
                state = detail() + "\n"
            except Exception as exc:  # noqa: BLE001 — the timeout is the failure to report
                state = f"(state unreadable: {exc})\n"
        raise AssertionError(f"timed out waiting for {what}\n{state}{self.scheduler_state()}\n{self.log_tail()}")

    def scheduler_state(self) -> str:
        """What decides whether the scheduler looks at a run: the DAGs' flags, import errors and
        the scheduler's own last lines (task output, logged by its workers, left out)."""
        try:
            dags = self.query("select dag_id, is_paused, is_stale, has_import_errors from dag order by dag_id")
            errors = self.query("select filename, substr(stacktrace, 1, 500) from import_error")
            # a scheduler whose loop is alive beats every few seconds
            jobs = self.query("select job_type, state, latest_heartbeat from job where state = 'running'")
        except Exception as exc:  # noqa: BLE001 — a diagnosis must not hide the failure it explains
            return f"(scheduler state unreadable: {exc})"
        lines = []
        for path in sorted(self.home.glob("*.log")):
            lines += [line for line in path.read_text(errors="replace").splitlines()
                      if line.startswith("scheduler") and "[task]" not in line and "dag_id=" not in line]
        return (f"now: {datetime.now(UTC)}; running jobs (type, state, last heartbeat): {jobs}\n"
                f"dags (id, paused, stale, import errors): {dags}\nimport errors: {errors}\n"
                "--- scheduler, last lines\n" + "\n".join(lines[-40:]))

    def runs(self, dag_id: str, run_type: str | None = None) -> list[tuple]:
        rows = self.query("select run_id, run_type, state, data_interval_start, data_interval_end from dag_run "
                          "where dag_id = :dag order by data_interval_start, run_after", dag=dag_id)
        return [r for r in rows if run_type is None or r[1] == run_type]

    def wait_runs(self, dag_id: str, count: int, run_type: str | None = None, timeout: float = 420) -> list[tuple]:
        """Wait until ``dag_id`` has at least ``count`` runs (of ``run_type``) and all of them succeeded."""

        def done() -> list[tuple] | None:
            runs = self.runs(dag_id, run_type)
            failed = [r for r in runs if r[2] == "failed"]
            assert not failed, f"{dag_id} runs failed: {failed}\n" + self.task_failures(dag_id)
            # the DAGs retry after minutes; nothing here should need a retry, so one is a failure now
            retrying = self.query("select task_id, run_id from task_instance where dag_id = :dag "
                                  "and state = 'up_for_retry'", dag=dag_id)
            assert not retrying, f"{dag_id} tasks failed and wait to retry: {retrying}\n" + self.task_failures(dag_id)
            finished = [r for r in runs if r[2] == "success"]
            return finished if len(finished) >= count and len(finished) == len(runs) else None

        return self.wait(f"{count} successful runs of {dag_id}", done, timeout,
                         detail=lambda: f"runs: {self.runs(dag_id)}\nprocesses: {self.process_titles()}\n"
                                        f"tasks: " + self.task_failures(dag_id))

    def process_titles(self) -> list[str]:
        """What is still running from this AIRFLOW_HOME (a scheduler that died shows here)."""
        titles = []
        for pid in self.leftovers():
            try:
                titles.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
            except OSError:
                continue
        return titles

    def task_failures(self, dag_id: str) -> str:
        rows = self.query("select task_id, run_id, map_index, state, try_number, hostname from task_instance "
                          "where dag_id = :dag and state is distinct from 'success'", dag=dag_id)
        logs = sorted((self.home / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
        return f"{rows}\n" + "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-2500:]}" for p in logs[-3:])


def _zombie(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True  # gone


def worker_hostname() -> str:
    """``[core] hostname_callable`` for test workers sharing one machine: each reports its own name."""
    import socket

    return os.environ.get("STEPPEWATCH_TEST_WORKER") or socket.getfqdn()
