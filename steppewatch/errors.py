"""Exit codes, and the errors that end a command with one of them.

One number means one thing, so that a caller (a script, the Airflow task) can decide by the
code alone whether to retry, stop or go on: a configuration error is not retried, an
unreachable service is, a run interrupted by a signal is run again. ``EXIT_CODES`` is the
table the CLI's ``--help`` and the README show. Kept apart from ``store`` and ``index`` so
that the CLI can name these without importing boto3 or SQLAlchemy first.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What ``steppewatch`` exits with, named so that callers and code agree on the numbers."""

    OK = 0
    CONFIG = 2  # usage or configuration: named on stderr (variable, file, site, field); not worth retrying
    USAGE = 2  # the same code as CONFIG (an alias kept for callers that say USAGE)
    UNAVAILABLE = 3  # the store, the index or the SMTP server cannot be reached: run again when it is back
    SOURCES_FAILED = 4  # `crawl`: every source of every site failed
    INCOMPLETE = 5  # `crawl`: interrupted (SIGTERM, Ctrl-C); what was stored stays: run the same window again
    REJECTED = 6  # `extract`: some page was rejected (not an article) or could not be read


EXIT_CODES: tuple[tuple[ExitCode, str], ...] = (
    (ExitCode.OK, "done"),
    (ExitCode.CONFIG, "usage or configuration error (the message names the variable, file, site or field)"),
    (ExitCode.UNAVAILABLE, "the store, the index or the SMTP server is unreachable: run again when it is back"),
    (ExitCode.SOURCES_FAILED, "crawl: every source of every site failed"),
    (ExitCode.INCOMPLETE, "crawl: interrupted by SIGTERM or SIGINT; what was stored stays stored: "
                          "run the same window again"),
    (ExitCode.REJECTED, "extract: a page was rejected or could not be read"),
)


class SteppewatchError(Exception):
    """An error the CLI reports in one line (never a traceback) and exits with ``exit_code``."""

    exit_code: ExitCode = ExitCode.CONFIG


class ConfigError(SteppewatchError, ValueError):
    """A setting that cannot be used (a malformed URL, say); the message names the setting and
    never holds a secret."""

    exit_code = ExitCode.CONFIG


class Unavailable(SteppewatchError, RuntimeError):
    """A service a command depends on cannot be reached; the message names it (redacted)."""

    exit_code = ExitCode.UNAVAILABLE


class StoreUnavailable(Unavailable):
    """The store cannot be written: checked before a crawl fetches anything."""


class IndexUnavailable(Unavailable):
    """The index database cannot be reached: checked before a crawl fetches anything."""


class MailUnavailable(Unavailable):
    """The SMTP server cannot be reached."""
