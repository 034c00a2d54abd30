"""The run ledger: what one crawler found, fetched, skipped, failed and wrote, typed.

A Scrapy extension (``crawler.get_extension(RunLedger)``, like ``CrawlArchive``) the
spider, its errbacks, the middlewares, the pipelines and the archive record into through
methods: per-source counters (items listed, fetched, stored, errors by kind), skips by
reason, and the store keys written and deleted (to a file of its own,
``LEDGER_KEYS_FILE``, in the runner's directory: a year's backfill writes millions). It
replaces stats keys with URLs inside (parsed back with ``rsplit``) and a keys log three
modules shared. A crawl process hands its ledgers to the run (they pickle) for
``finish_run``. Counts without a URL are also mirrored as Scrapy stats under ``sw/`` so
Scrapy's own stats dump still shows them. ``site_summary`` folds the ledger (and
Scrapy's HTTP and retry stats) into the per-site summary ``steppewatch/crawl.py`` builds
the run from; ``with_verdict`` says in one line whether a site gave new articles,
nothing new, or nothing at all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

# the kinds of source a site registers; a listing page found while crawling is counted apart
SOURCE_KINDS = ("feed", "sitemap", "listing", "discovered_listing")

# skips that mean "found, but nothing to fetch": the verdict's "nothing new" reasons
NOTHING_NEW_SKIPS = {
    "already_stored": "already stored",
    "rejected_recently": "rejected recently",
    "source_date_out_of_window": "outside the window",
    "already_queued": "duplicate",
    "other_shard": "another process's",
}


@dataclass
class SourceRecord:
    """One source URL of a crawl (a feed, a sitemap, a listing page) and what it gave."""

    url: str
    kind: str = "?"
    status: int | None = None
    content_type: str | None = None
    format: str | None = None
    items: int = 0
    discovered: int = 0
    fetched: int = 0
    stored: int = 0
    rejected: int = 0
    errors: int = 0
    error: str | None = None
    error_kinds: Counter[str] = field(default_factory=Counter)
    rejected_kinds: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "kind": self.kind, "status": self.status, "content_type": self.content_type,
                "format": self.format, "items": self.items, "discovered": self.discovered,
                "fetched": self.fetched, "stored": self.stored, "rejected": self.rejected,
                "errors": self.errors, "error": self.error,
                "error_kinds": dict(sorted(self.error_kinds.items())),
                "rejected_kinds": dict(sorted(self.rejected_kinds.items()))}


class RunLedger:
    """Typed counters of one crawler (one site) and the store keys it wrote and deleted."""

    # the per-site summary's groups of counts by reason; each is a dict in the summary
    GROUPS = ("rejected", "errors", "source_errors", "skipped", "undated", "outcome", "store_errors",
              "refused", "date_source", "dates")
    # plain counts that are always in the summary
    COUNTS = ("discovered", "fetched", "stored", "out_of_window", "not_stored")
    # what every process of a sharded run (NEWS_SHARD) counts alike, having read the same
    # sources: merged by taking one process's count (the largest), not the sum; skips decided
    # after the shard split (an article URL is one process's) add up
    READ_BY_EVERY_PROCESS = frozenset({"sources_ok", "source_errors", "undated"})
    SKIPS_AFTER_THE_SHARD = frozenset({"already_stored", "rejected_recently"})

    def __init__(self, stats: Any = None, keys_file: str | None = None) -> None:
        self.stats = stats  # Scrapy's stats collector, mirrored into (``sw/…``, never a URL)
        self.counts: Counter[str] = Counter()
        self.groups: dict[str, Counter[str]] = {group: Counter() for group in self.GROUPS}
        self.sources: dict[str, SourceRecord] = {}
        # a year's backfill writes millions of keys: with ``keys_file`` (the runner's
        # directory) they go to that file, one ``+key`` or ``-key`` a line, not into memory
        self.keys_file = keys_file
        self._keys_out: TextIO | None = None
        self._written: set[str] = set()
        self._deleted: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Any) -> RunLedger:
        from scrapy import signals

        ledger = cls(crawler.stats, crawler.settings.get("LEDGER_KEYS_FILE"))
        crawler.signals.connect(ledger.spider_error, signal=signals.spider_error)
        crawler.signals.connect(ledger.close, signal=signals.spider_closed)
        return ledger

    def close(self) -> None:
        """Flush and close the keys file (the spider closed); the ledger stays readable."""
        if self._keys_out is not None:
            self._keys_out.close()
            self._keys_out = None

    def __getstate__(self) -> dict[str, Any]:
        # handed from a crawl process to the run's: no open file, no stats collector
        self.close()
        return {**self.__dict__, "stats": None}

    def spider_error(self, failure: Any, response: Any = None, spider: Any = None) -> None:
        """An exception a callback raised and did not catch: on a source, what it listed was
        lost (a source error); on an article, the article (an error of its source's)."""
        kind = f"exception_{type(failure.value).__name__}"
        meta = getattr(response, "meta", None) or {}
        request = getattr(response, "request", None)
        if meta.get("sw_kind") and meta.get("sw_source_url"):
            self.source_failed(meta["sw_source_url"], kind, f"{kind}: {failure.value}"[:200])
        elif request is not None and "source_url" in request.cb_kwargs:
            self.article_failed(request.cb_kwargs["source_url"], kind)
        else:
            self.count_in("source_errors", kind)

    # -- recording -----------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        """A plain count (``sources_ok``, ``store_retries``, ``index_lookup_errors``…)."""
        self.counts[name] += n
        self._mirror(name, n)

    def count_in(self, group: str, name: str, n: int = 1) -> None:
        """A count by reason within a group (``refused/private_address``, ``date_source/feed``…)."""
        self.groups.setdefault(group, Counter())[name] += n
        self._mirror(f"{group}/{name}", n)

    def source(self, url: str, kind: str | None = None) -> SourceRecord:
        """The source at ``url``, registered on first use (``kind`` set when given)."""
        record = self.sources.get(url)
        if record is None:
            record = self.sources[url] = SourceRecord(url)
        if kind is not None:
            record.kind = kind
        return record

    def source_read(self, url: str, status: int, content_type: str | None, fmt: str, items: int,
                    error: str | None = None, error_kind: str | None = None) -> None:
        """A source fetched and parsed: ``items`` entries listed, or ``error`` if unreadable."""
        record = self.source(url)
        record.status, record.content_type, record.format = status, content_type, fmt
        record.items += items
        if error:
            record.error = error
            self.count_in("source_errors", error_kind or "invalid")
        else:
            self.count("sources_ok")

    def source_failed(self, url: str, kind: str, detail: str | None = None, status: int | None = None) -> None:
        """A source that could not be fetched (``kind``: timeout, http_503…) or read."""
        record = self.source(url)
        record.error = detail or kind
        if status is not None:
            record.status = status
        self.count_in("source_errors", kind)

    def skipped(self, reason: str, n: int = 1) -> None:
        """Listed URLs not fetched, by reason (already stored, outside the window…)."""
        self.count_in("skipped", reason, n)

    def undated(self, reason: str) -> None:
        self.count_in("undated", reason)

    def discovered(self, source_url: str) -> None:
        self.count("discovered")
        self.source(source_url).discovered += 1

    def fetched(self, source_url: str | None) -> None:
        self.count("fetched")
        if source_url:
            self.source(source_url).fetched += 1

    def article_failed(self, source_url: str | None, kind: str) -> None:
        self.count_in("errors", kind)
        if source_url:
            record = self.source(source_url)
            record.errors += 1
            record.error_kinds[kind] += 1

    def rejected(self, reason: str, source_url: str | None) -> None:
        self.count_in("rejected", reason)
        if source_url:
            record = self.source(source_url)
            record.rejected += 1
            record.rejected_kinds[reason] += 1

    def out_of_window(self) -> None:
        self.count("out_of_window")

    def committed(self, outcome: str, source_url: str | None, written: list[str], deleted: list[str]) -> None:
        """An article handed to the archive: its outcome and the store keys it wrote and deleted."""
        self.count_in("outcome", outcome)
        if outcome == "stored":
            self.count("stored")
            if source_url:
                self.source(source_url).stored += 1
        self.keys(written, deleted)

    def keys(self, written: list[str], deleted: list[str]) -> None:
        """Store keys written and deleted; a key deleted at any point is not one the run holds."""
        if self.keys_file is None:
            self._written.update(k for k in written if k)
            self._deleted.update(k for k in deleted if k)
            return
        if self._keys_out is None:
            self._keys_out = open(self.keys_file, "a", encoding="utf-8")  # noqa: SIM115
        self._keys_out.writelines([*(f"+{k}\n" for k in written if k), *(f"-{k}\n" for k in deleted if k)])

    def held_keys(self) -> tuple[set[str], set[str]]:
        """(keys written, keys deleted): everything recorded, in memory or in the keys file."""
        written, deleted = set(self._written), set(self._deleted)
        if self.keys_file is not None:
            if self._keys_out is not None:
                self._keys_out.flush()
            try:
                with open(self.keys_file, encoding="utf-8") as fh:
                    for line in fh:
                        (written if line[0] == "+" else deleted).add(line[1:].rstrip("\n"))
            except FileNotFoundError:  # nothing stored
                pass
        return written, deleted

    def store_failed(self, kind: str) -> None:
        self.count_in("store_errors", kind)

    def not_stored(self) -> None:
        self.count("not_stored")

    def _mirror(self, name: str, n: int) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"sw/{name}", n)

    # -- merging -------------------------------------------------------------------
    @classmethod
    def merged(cls, ledgers: list[RunLedger]) -> RunLedger:
        """One site's ledgers from the processes of one run (``NEWS_SHARD``), as if one
        process had crawled: every process read the same sources, so what reading them
        counted (a source's listing, its errors, the skips before the shard split) is taken
        once, and what the articles gave (split between the processes) adds up."""
        out = cls()
        for ledger in ledgers:
            for name, n in ledger.counts.items():
                shared = name in cls.READ_BY_EVERY_PROCESS
                out.counts[name] = max(out.counts[name], n) if shared else out.counts[name] + n
            for group, counter in ledger.groups.items():
                merged = out.groups.setdefault(group, Counter())
                for name, n in counter.items():
                    if len(ledgers) > 1 and (group, name) == ("skipped", "other_shard"):
                        continue  # in the run as a whole, each of them is some process's
                    shared = group in cls.READ_BY_EVERY_PROCESS or (
                        group == "skipped" and name not in cls.SKIPS_AFTER_THE_SHARD)
                    merged[name] = max(merged[name], n) if shared else merged[name] + n
            for url, record in ledger.sources.items():
                seen = out.sources.get(url)
                if seen is None:
                    out.sources[url] = SourceRecord(**{**record.__dict__, "error_kinds": Counter(record.error_kinds),
                                                       "rejected_kinds": Counter(record.rejected_kinds)})
                    continue
                for name in ("discovered", "fetched", "stored", "rejected", "errors"):
                    setattr(seen, name, getattr(seen, name) + getattr(record, name))
                seen.error_kinds.update(record.error_kinds)
                seen.rejected_kinds.update(record.rejected_kinds)
                seen.error = seen.error or record.error
                if seen.kind == "?":
                    seen.kind = record.kind
            written, deleted = ledger.held_keys()
            out.keys(list(written), list(deleted))
        return out

    # -- reading -------------------------------------------------------------------
    def site_summary(self, stats: dict[str, Any] | None = None) -> dict[str, Any]:
        """The per-site summary: the ledger's counts, its sources, Scrapy's HTTP and retry stats."""
        stats = stats or {}
        out: dict[str, Any] = {name: self.counts.get(name, 0) for name in self.COUNTS}
        out.update({name: n for name, n in sorted(self.counts.items()) if name not in out})
        out.update({group: dict(sorted(counter.items())) for group, counter in self.groups.items()})
        out["http_status"] = {k.rsplit("/", 1)[1]: v for k, v in stats.items()
                              if k.startswith("downloader/response_status_count/")}
        out["retries"] = {k.split("/", 1)[1]: v for k, v in stats.items()
                          if k.startswith("retry/") and not k.startswith("retry/reason_count")}
        out["finish_reason"] = stats.get("finish_reason")
        out["sources"] = [s.as_dict() for s in self.sources.values() if s.kind in SOURCE_KINDS]
        written, deleted = self.held_keys()
        out["keys_written"] = len(written - deleted)
        out["keys_deleted"] = len(deleted)
        return with_verdict(out)


def with_verdict(site: dict[str, Any]) -> dict[str, Any]:
    """Add ``all_sources_failed``, ``found``, ``state`` and ``verdict`` to a per-site summary.

    ``state`` is one of ``new`` (articles stored), ``nothing_new`` (articles found, none
    new: the skips say why), ``nothing_found`` (sources read, no article listed) and
    ``unreachable`` (every registered source failed).
    """
    registered = [s for s in site["sources"] if s["kind"] != "discovered_listing"]
    site["all_sources_failed"] = bool(registered) and all(s["error"] for s in registered)
    site["found"] = sum(s["items"] for s in site["sources"])
    errors = sum(site["errors"].values())
    tail = f"; {errors} article(s) failed ({_kinds(site['errors'])})" if errors else ""
    failed_sources = [s for s in registered if s["error"]]
    if failed_sources and not site["all_sources_failed"]:
        tail += f"; {len(failed_sources)} of {len(registered)} sources failed ({_source_kinds(failed_sources)})"
    if site["not_stored"]:
        tail += f"; {site['not_stored']} not stored ({_kinds(site['store_errors'])})"
    if site["stored"]:
        site["state"] = "new"
        site["verdict"] = f"{site['stored']} new" + tail
    elif site["all_sources_failed"]:
        site["state"] = "unreachable"
        site["verdict"] = f"nothing reachable (every source failed: {_source_kinds(registered)})" + tail
    elif site["found"] or site["fetched"]:
        reasons = {label: site["skipped"].get(reason, 0) for reason, label in NOTHING_NEW_SKIPS.items()}
        reasons["outside the window"] += site["out_of_window"]
        reasons["not articles"] = sum(site["rejected"].values())
        reasons["unchanged or known"] = sum(n for k, n in site["outcome"].items() if k != "stored")
        why = ", ".join(f"{n} {label}" for label, n in reasons.items() if n) or "none fetched"
        site["state"] = "nothing_new"
        site["verdict"] = f"nothing new ({site['found']} found: {why})" + tail
    else:
        site["state"] = "nothing_found"
        site["verdict"] = "nothing found (sources read, no article listed)" + tail
    return site


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _source_kinds(sources: list[dict[str, Any]]) -> str:
    counts = Counter(str(s["error"]).split(":", 1)[0] for s in sources)
    return _kinds(dict(counts))
