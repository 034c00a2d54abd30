"""``steppewatch airflow``: Airflow 3 on this machine with the project's DAGs (``make airflow``).

Runs ``airflow standalone`` (scheduler, dag-processor, API server and UI, triggerer,
SQLite, LocalExecutor) with AIRFLOW_HOME under ``data/airflow``, the project's ``dags/``
and no examples, waits until the API answers, creates the crawl tasks' domain pools
(steppewatch/pools.py: a task in a pool that does not exist is never scheduled), then
prints the UI address, the login that the simple auth manager generated and the line to
export in another shell so that ``airflow`` there (``airflow backfill create``) uses this
AIRFLOW_HOME and database rather than ``~/airflow``. Store, index and outbox default to absolute
paths under ``data/`` so tasks find them whatever their working directory. Ctrl-C (or
SIGTERM) stops the whole process group: standalone leaves its children running otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Airflow's [database] sql_alchemy_connect_args for SQLite: wait for a lock up to a minute
# (sqlite3's 5 s default makes `airflow backfill create` fail with "database is locked"
# while the scheduler writes).
SQLITE_CONNECT_ARGS: dict[str, object] = {"timeout": 60}
SQLITE_CONNECT_ARGS_ASYNC: dict[str, object] = {"timeout": 60}  # the API server's aiosqlite engine


def prepare_sqlite(path: Path) -> None:
    """Put Airflow's SQLite metadata database in WAL mode before Airflow first opens it.

    In SQLite's default rollback-journal mode a reader that wants to write while another
    process is committing gets "database is locked" at once, whatever the busy timeout
    (the scheduler writes every second, so `airflow backfill create` fails that way and
    leaves its half-created backfill "running"). In WAL mode readers never block the
    writer and writers wait their turn. The mode is stored in the file, so it holds for
    every Airflow process that opens it later.
    """
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise RuntimeError(f"{path}: SQLite refused WAL mode ({mode})")


def airflow_env(home: Path, port: int, data: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",  # standalone starts its parts by name
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="false",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://localhost:{port}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{port}/execution/",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS="steppewatch.airflow_local.SQLITE_CONNECT_ARGS",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC="steppewatch.airflow_local.SQLITE_CONNECT_ARGS_ASYNC",
    )
    env.setdefault("STEPPEWATCH_STORE", str(data / "store"))
    env.setdefault("STEPPEWATCH_INDEX_URL", f"sqlite:///{data / 'index.sqlite'}")
    env.setdefault("STEPPEWATCH_OUTBOX_DIR", str(data / "outbox"))
    return env


# what another shell needs for `airflow ...` to reach this instance (the rest is in the environment
# of the processes started here, not in airflow.cfg)
SHELL_VARIABLES = ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__LOAD_EXAMPLES",
                   "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS",
                   "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC", "STEPPEWATCH_STORE",
                   "STEPPEWATCH_INDEX_URL", "STEPPEWATCH_OUTBOX_DIR")


def export_line(env: dict[str, str]) -> str:
    """``export PATH=... AIRFLOW_HOME=...``: this Airflow from a new shell."""
    import shlex

    bin_dir = shlex.quote(str(Path(sys.executable).parent))
    pairs = " ".join(f"{name}={shlex.quote(env[name])}" for name in SHELL_VARIABLES if env.get(name))
    return f'export PATH={bin_dir}:"$PATH" {pairs}'


def create_pools(env: dict[str, str]) -> str | None:
    """The crawl pools of the registry in ``env``, created or updated; None, or why not."""
    from steppewatch.pools import apply, pool_definitions
    from steppewatch.registry import RegistryError, load_registry

    try:
        apply(pool_definitions(load_registry(env.get("STEPPEWATCH_SITES") or None)), env=env)
    except (RegistryError, RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None


def login(home: Path) -> tuple[str, str] | None:
    """The user and password the simple auth manager generated for this AIRFLOW_HOME."""
    path = home / "simple_auth_manager_passwords.json.generated"
    try:
        users = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return next(iter(users.items()), None)


def run(home: Path, port: int, data: Path, ready_timeout: float = 300) -> int:
    airflow = Path(sys.executable).parent / "airflow"
    if not airflow.exists():
        print("Airflow is not installed in this environment: pip install -e '.[airflow]'", file=sys.stderr)
        return 2
    home.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):  # standalone's default: SQLite in the home
        prepare_sqlite(home / "airflow.db")
    log_path = home / "standalone.log"
    env = airflow_env(home, port, data)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(airflow), "standalone"], env=env, cwd=home,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(*_: object) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        print(f"starting Airflow (AIRFLOW_HOME={home}, log {log_path}) ...", flush=True)
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                print(f"airflow standalone exited {proc.returncode}; see {log_path}", file=sys.stderr)
                return 1
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/api/v2/monitor/health", timeout=5) as r:
                    if r.status == 200 and login(home):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                print(f"Airflow did not answer within {ready_timeout:.0f}s; see {log_path}", file=sys.stderr)
                stop()
                return 1
            time.sleep(2)
        problem = create_pools(env)
        if problem:
            print(f"could not create the crawl pools, so no crawl would be scheduled: {problem}", file=sys.stderr)
            stop()
            return 1
        user, password = login(home) or ("admin", "?")
        print(f"Airflow UI: http://localhost:{port}\nlogin: {user} / {password}\n"
              f"DAGs: {ROOT / 'dags'} (paused at creation: unpause the sites to crawl)\n"
              f"data: {data}\n"
              f"AIRFLOW_HOME={home}; for `airflow ...` in another shell (airflow backfill create), first:\n"
              f"  {export_line(env)}\n"
              f"Ctrl-C stops every Airflow process.", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop()
