"""``steppewatch airflow`` (``make airflow``): starts Airflow with the project's DAGs, prints
the UI address and a login that works, and leaves no process behind when stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.airflow_harness import Airflow
from tests.conftest import free_port

pytestmark = pytest.mark.timeout(600)


def test_make_airflow_prints_a_working_login_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    proc = subprocess.Popen([sys.executable, "-m", "steppewatch.cli", "airflow", "--port", str(port),
                             "--home", str(tmp_path / "airflow"), "--data", str(tmp_path / "data")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    harness = Airflow(tmp_path / "airflow", env, f"sqlite:///{tmp_path}/airflow/airflow.db")
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any(line.startswith("login: ") for line in lines):
            line = proc.stdout.readline()
            assert line, "steppewatch airflow exited early:\n" + "".join(lines)
            lines.append(line)
        out = "".join(lines)
        assert f"Airflow UI: http://localhost:{port}" in out, out
        user, password = re.search(r"^login: (\S+) / (\S+)$", out, re.M).groups()
        request = urllib.request.Request(f"http://localhost:{port}/auth/token", method="POST",
                                         data=json.dumps({"username": user, "password": password}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            token = json.loads(response.read())["access_token"]

        def dags() -> set[str]:
            req = urllib.request.Request(f"http://localhost:{port}/api/v2/dags?limit=200",
                                         headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=30) as response:
                return {d["dag_id"] for d in json.loads(response.read())["dags"]}

        found = harness.wait("the project's DAGs in the API", lambda: (
            {"steppewatch_backfill", "steppewatch_alert_digest", "steppewatch_tengrinews"} <= dags()), timeout=180)
        assert found
        mode = harness.query("pragma journal_mode")
        assert mode == [("wal",)], "the metadata DB is in WAL mode: no instant 'database is locked'"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=90)
    assert harness.leftovers() == [], "Airflow processes outlived steppewatch airflow"
