"""A subprocess's log, relayed line by line as it comes, each line at the level it was logged at.

Airflow writes what a task prints on stderr into the task log at ERROR, and only once the
crawl subprocess had ended (its stderr was captured whole): a successful run read as 142
errors out of 154 lines, and a long crawl showed nothing until it was over. Here every
stderr line is read while the command runs and logged through ``logging`` at the level its
own prefix gives (Scrapy's ``… [logger] LEVEL: …``, the CLI's ``steppewatch: error: …``);
continuation lines (a traceback, Scrapy's stats dump) keep the level of the line they
continue. Standard output (the JSON summary) is collected whole on a thread of its own, so a
large summary cannot fill its pipe while stderr is being read.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

# Scrapy's LOG_FORMAT: "%(asctime)s [%(name)s] %(levelname)s: %(message)s"
_SCRAPY_LINE = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\S* \[[^\]]+\] (CRITICAL|ERROR|WARNING|INFO|DEBUG): ")
_CLI_LINE = re.compile(r"^steppewatch: (error|warning|note): ", re.I)
_CLI_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "note": logging.INFO}


def line_level(line: str, previous: int) -> int:
    """The level a line was logged at; a line without a prefix continues the previous one."""
    match = _SCRAPY_LINE.match(line)
    if match:
        return logging.getLevelName(match.group(1))
    match = _CLI_LINE.match(line)
    if match:
        return _CLI_LEVELS[match.group(1).lower()]
    return previous


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr_tail: str  # the last lines of stderr, for an error message


def run_relayed(command: Sequence[str], env: dict[str, str] | None, logger: logging.Logger,
                timeout: float | None = None, tail_lines: int = 40) -> Finished:
    """Run ``command``, relaying its stderr to ``logger`` line by line; stop it after ``timeout``.

    A command still running at the timeout is sent SIGTERM (a crawl then stops gracefully and
    says its run is incomplete), and SIGKILL with its whole process group 60 s later.
    """
    proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                            encoding="utf-8", errors="replace", start_new_session=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else ""), daemon=True)
    reader.start()
    timer = None
    if timeout is not None:
        timer = threading.Timer(timeout, _stop, args=(proc,))
        timer.daemon = True
        timer.start()
    tail: deque[str] = deque(maxlen=tail_lines)
    level = logging.INFO
    try:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.rstrip("\n")
            level = line_level(line, level)
            logger.log(level, "%s", line)
            tail.append(line)
        returncode = proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
        if proc.poll() is None:
            _kill(proc)
    reader.join()
    return Finished(returncode, "".join(out), "\n".join(tail))


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        threading.Timer(60, _kill, args=(proc,)).start()


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
