"""``steppewatch airflow`` (make airflow) prints a line that gives a new shell its Airflow: pasted
into bash it sets the same AIRFLOW_HOME, DAG folder, database settings and PATH, quoting intact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from steppewatch.airflow_local import SHELL_VARIABLES, airflow_env, export_line


def test_export_line_gives_a_new_shell_this_airflow(tmp_path: Path) -> None:
    home, data = tmp_path / "air flow's home", tmp_path / "data"
    env = airflow_env(home, 8080, data, base={"PATH": "/usr/bin:/bin"})
    line = export_line(env)
    assert line.startswith("export PATH=")
    shown = subprocess.run(["bash", "-c", line + '\nprintf "%s\\n" "$PATH" ' + " ".join(f'"${n}"' for n in SHELL_VARIABLES)],
                           env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True).stdout.splitlines()
    assert shown[0].split(":")[0] == str(Path(sys.executable).parent) and shown[0].endswith(":/usr/bin:/bin")
    assert dict(zip(SHELL_VARIABLES, shown[1:], strict=True)) == {n: env[n] for n in SHELL_VARIABLES}
    assert shown[1] == str(home)
