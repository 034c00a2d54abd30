"""Failures of the services a run depends on, which the CLI turns into exit code 3.

Kept apart from ``store`` and ``index`` so that the CLI can name them without importing
boto3 or SQLAlchemy first.
"""

from __future__ import annotations


class StoreUnavailable(RuntimeError):
    """The store cannot be written: checked before a crawl fetches anything."""


class IndexUnavailable(RuntimeError):
    """The index database cannot be reached: checked before a crawl fetches anything."""
