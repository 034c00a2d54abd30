"""Exit codes, and failures of the services a run depends on (exit code 3).

Kept apart from ``store`` and ``index`` so that the CLI can name them without importing
boto3 or SQLAlchemy first.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What ``steppewatch`` exits with, named so that callers and code agree on the numbers.

    ``crawl`` also exits 1 when every source of every site failed.
    """

    OK = 0
    USAGE = 2  # a usage or configuration error, reported on stderr naming the file, site and field
    UNAVAILABLE = 3  # the store or the index cannot be reached: run again when it is back
    REJECTED = 4  # `extract`: some page was rejected (not an article) or could not be read


class StoreUnavailable(RuntimeError):
    """The store cannot be written: checked before a crawl fetches anything."""


class IndexUnavailable(RuntimeError):
    """The index database cannot be reached: checked before a crawl fetches anything."""


class ConfigError(ValueError):
    """A setting that cannot be used (a malformed URL, say); the message names the setting and
    never holds a secret. The CLI exits 2 with it."""
