"""The README's shell examples run as printed after ``make demo``, offline.

Every ```sh block of README.md is run, in order, each block in a new bash (as a reader
pastes it into a new shell), in a temporary copy of the checkout whose ``.venv/bin`` runs
this interpreter on the copy: ``make demo`` itself (the Makefile sees the venv installed),
then the examples on the demo's store, index and sample sites. A line whose comment says
``needs: ...`` (the internet, Airflow, Docker, PostgreSQL) is left out by that mark; a line
whose comment says ``exits N`` must exit N, every other line 0. Each command must print a
result (to its redirect's file if it has one), and not an empty one (no "0 matching
records"): the README shows none that finds nothing.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from steppewatch.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^([ \t]*)```sh\n(.*?)^\1```", re.M | re.S)
EMPTY_RESULT = re.compile(r"^0 matching records|\"examined\": 0\b|^\[\]$|^\{\}$", re.M)

pytestmark = pytest.mark.timeout(300)


@dataclass
class Example:
    block: int
    line: str
    needs: str | None
    exit_code: int

    @property
    def comment(self) -> str:
        found = re.search(r"\s#\s(.*)$", self.line)
        return found.group(1) if found else ""


def examples(text: str) -> list[list[Example]]:
    """The sh blocks of the README, each as its lines (comment-only and blank lines dropped)."""
    blocks = []
    for number, match in enumerate(FENCE.finditer(text)):
        lines = []
        for raw in match.group(2).splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            example = Example(number, line, None, 0)
            needs = re.search(r"\bneeds: ([^;]+)", example.comment)
            exits = re.search(r"\bexits (\d+)\b", example.comment)
            example.needs = needs.group(1).strip() if needs else None
            example.exit_code = int(exits.group(1)) if exits else 0
            lines.append(example)
        blocks.append(lines)
    return blocks


def test_readme_marks_what_cannot_run_offline() -> None:
    """The parse itself: the blocks are found, and what needs the network or services says so."""
    blocks = examples(README.read_text("utf-8"))
    lines = [e for block in blocks for e in block]
    assert any(e.line.startswith("make demo") and e.needs is None for e in lines)
    for e in lines:
        if re.search(r"\b(sites --check|crawl)\b", e.line) or e.line.startswith(("make airflow", "make test",
                                                                                  "airflow ", "docker ")):
            assert e.needs, f"runs only with the internet or a service, but has no `# needs:` mark: {e.line}"
    assert any(e.exit_code == ExitCode.REJECTED for e in lines)


def _setup(tmp: Path) -> Path:
    """A copy of the checkout whose .venv runs this interpreter on the copy, as `make` installed it."""
    checkout = tmp / "steppewatch"
    top = {".venv", "data", ".git", "build", "dist"}
    caches = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache", ".hypothesis")
    shutil.copytree(ROOT, checkout, symlinks=True,
                    ignore=lambda d, names: (top & set(names) if Path(d) == ROOT else set()) | caches(d, names))
    bin_dir = checkout / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = shlex.quote(sys.executable)
    scripts = {"python": f'exec {python} "$@"',
               "steppewatch": f"exec {python} -c 'import sys; from steppewatch.cli import main; sys.exit(main())' \"$@\""}
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\nexport PYTHONPATH={shlex.quote(str(checkout))}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    (bin_dir / ".installed").touch()  # newer than pyproject.toml and the Makefile: make installs nothing
    return checkout


def _run_block(block: list[Example], checkout: Path, out: Path, env: dict[str, str]) -> list[tuple[Example, int, str]]:
    script = []
    runnable = [e for e in block if e.needs is None]
    for i, example in enumerate(runnable):
        script.append(f"{{ {example.line}\n}} > {out}/{i}.out 2> {out}/{i}.err; echo $? > {out}/{i}.rc")
    subprocess.run(["bash", "-c", "\n".join(script)], cwd=checkout, env=env, timeout=240, check=False)
    results = []
    for i, example in enumerate(runnable):
        printed = (out / f"{i}.out").read_text("utf-8", "replace")
        redirect = re.search(r">\s*(\S+)\s*(?:#.*)?$", example.line)
        if redirect:
            printed = (checkout / redirect.group(1)).read_text("utf-8", "replace")
        rc = int((out / f"{i}.rc").read_text())
        results.append((example, rc, printed + "\n" + (out / f"{i}.err").read_text("utf-8", "replace")[-2000:]
                        if rc != example.exit_code else printed))
    return results


def test_readme_examples_run_as_printed_after_make_demo(tmp_path: Path) -> None:
    checkout = _setup(tmp_path)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STEPPEWATCH_", "AIRFLOW", "AWS_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["NO_PROXY"] = "*"
    blocks = examples(README.read_text("utf-8"))
    ran, failures = 0, []
    for number, block in enumerate(blocks):
        out = tmp_path / f"block{number}"
        out.mkdir()
        for example, rc, printed in _run_block(block, checkout, out, env):
            ran += 1
            if rc != example.exit_code:
                failures.append(f"exit {rc}, not {example.exit_code}: {example.line}\n{printed[-3000:]}")
            elif not example.line.startswith("export ") and not printed.strip():
                failures.append(f"printed nothing: {example.line}")
            elif EMPTY_RESULT.search(printed):
                failures.append(f"found nothing: {example.line}\n{printed[-1000:]}")
    assert not failures, "\n\n".join(failures)
    assert ran >= 15
    assert (checkout / "data" / "demo" / "articles").is_dir() and not (checkout / "data" / "store").exists(), \
        "the demo's data stays in data/demo; nothing wrote the live store"
