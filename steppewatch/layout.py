"""Where everything lives in the object store: every key, its parser and the days a window reads.

One module owns the layout so that writers and readers cannot drift apart:

- ``articles/site=<id>/date=<YYYY-MM-DD>/<article id>.json`` — an article record;
- ``raw/site=<id>/date=<D>/<article id>.html.gz`` — the page it was extracted from;
- ``aliases/site=<id>/date=<D>/<article id>.json`` — a copy of an earlier article's text;
- ``versions/site=<id>/date=<D>/<article id>/v<N>.json|html.gz`` — a record's earlier versions;
- ``staging/site=<id>/date=<D>/<article id>/v<N>.json|html.gz`` — a new version until its commit lands;
- ``datasets/articles/site=<id>/date=<D>/part-0.parquet`` — exports;
- ``runs/<run id>.json`` — a crawl's manifest (its keys written and deleted, its counts);
- ``delivered/rule=<rule hash>/<story id>.json`` — an alert that was sent (so the store alone
  knows what was delivered, whatever happens to the index).

``<D>`` is the UTC day the article is filed under (its publication, else its fetch time).
Site ids are validated slugs and article ids hex digests, so page content never steers a key;
``check_key`` refuses anything that could leave the store's root.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steppewatch.models import Article

RECORD_PREFIXES = ("articles/", "aliases/")


# path segments of safe characters only: no absolute keys, no empty segments, no "." or ".."
_KEY_RE = re.compile(r"^[A-Za-z0-9=_.\-]+(/[A-Za-z0-9=_.\-]+)*$")


def check_key(key: str) -> str:
    """Refuse keys that are absolute, climb out of the store's root or carry odd characters."""
    if not _KEY_RE.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"unsafe store key {key!r}")
    return key


def article_key(site: str, day: str, article_id: str) -> str:
    return check_key(f"articles/site={site}/date={day}/{article_id}.json")


def raw_key(site: str, day: str, article_id: str) -> str:
    return check_key(f"raw/site={site}/date={day}/{article_id}.html.gz")


def alias_key(site: str, day: str, article_id: str) -> str:
    return check_key(f"aliases/site={site}/date={day}/{article_id}.json")


def version_key(site: str, day: str, article_id: str, version: int, suffix: str) -> str:
    return check_key(f"versions/site={site}/date={day}/{article_id}/v{version}.{suffix}")


def staging_key(site: str, day: str, article_id: str, version: int, suffix: str) -> str:
    """Where a new version waits until the index commits it (then it moves over the record)."""
    return check_key(f"staging/site={site}/date={day}/{article_id}/v{version}.{suffix}")


def manifest_key(run_id: str) -> str:
    return check_key(f"runs/{run_id}.json")


def dataset_key(site: str, day: str) -> str:
    return check_key(f"datasets/articles/site={site}/date={day}/part-0.parquet")


def delivered_key(rule: str, story_id: str) -> str:
    """The marker of an alert sent for (rule, story). Rule names are free text: hashed."""
    digest = hashlib.sha256(rule.encode("utf-8")).hexdigest()[:16]
    return check_key(f"delivered/rule={digest}/{story_id}.json")


def site_prefix(kind: str, site: str | None = None) -> str:
    """``articles/`` or ``articles/site=<id>/``: what to list for one kind, of one site or all."""
    return f"{kind}/site={site}/" if site else f"{kind}/"


@dataclass(frozen=True)
class RecordKey:
    """A parsed ``articles/`` or ``aliases/`` key."""

    kind: str  # "articles" or "aliases"
    site: str
    day: date
    article_id: str

    @property
    def is_alias(self) -> bool:
        return self.kind == "aliases"


def parse_record_key(key: str) -> RecordKey | None:
    """The parts of a record key, or None for any other key (raw pages, versions, manifests…)."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] + "/" not in RECORD_PREFIXES or not parts[3].endswith(".json"):
        return None
    if not parts[1].startswith("site=") or not parts[2].startswith("date="):
        return None
    try:
        day = date.fromisoformat(parts[2].removeprefix("date="))
    except ValueError:
        return None
    return RecordKey(parts[0], parts[1].removeprefix("site="), day, parts[3].removesuffix(".json"))


def site_of_key(key: str) -> str | None:
    """The site a key is filed under (``…/site=<id>/…``), for any kind of key."""
    for part in key.split("/"):
        if part.startswith("site="):
            return part.removeprefix("site=")
    return None


def storage_day(article: Article) -> str:
    """The UTC day an article is filed under: its publication date, else its fetch date."""
    when = article.published_dt or datetime.fromisoformat(article.fetched_at or datetime.now(UTC).isoformat())
    return when.astimezone(UTC).date().isoformat()


def window_days(since: datetime, until: datetime) -> tuple[date, date] | None:
    """The first and last UTC day holding keys of the half-open window [since, until), or None
    for an empty window: a window ending at midnight does not read the day that starts then."""
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    if until <= since:
        return None
    return since.date(), (until - timedelta(microseconds=1)).date()
