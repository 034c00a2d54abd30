"""Dedup and index cost per article as the index grows: 10k, 100k and 1M articles.

    .venv/bin/python bench/dedup_scaling.py [--sizes 10000,100000,1000000] [--probes 300]
        [--per-day 2740] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test] [--no-sqlite]

Why: an hourly run commits a few hundred articles into an index that keeps every
article ever stored (a year of 20+ sites is about a million), so each article's dedup
(URL lookup, exact-content check, LSH candidates and their verification, the inserts)
must not slow down as the index grows.

How: one index per size and backend (SQLite files; with ``--pg`` fresh PostgreSQL
databases beside the given one).

* Each index is filled to its size with synthetic articles: rows in every table
  (articles, contents, urls, shingles, 64 LSH band rows each), bulk-loaded (BulkLoader)
  from batches generated once for all the indexes. Their
  shingle sets are drawn from a Zipfian vocabulary of 40,000 words, as real news is, and
  their MinHash signatures and bands computed by steppewatch.dedup, so unrelated
  articles collide in LSH bands as often as real ones do: two unrelated articles share
  stemmed content words at a median Jaccard of 0.05, as unrelated fixture articles do
  (docs/DEDUP.md; the script prints the figure it measured). Articles are spread ``--per-day`` per day backwards from
  the probes' day: an index of 10k articles has run for 4 days, one of 1M for a year, so
  the week-either-side window around today holds what it would in production.
* Then ``--probes`` real ``Index.commit`` calls per index (an Article whose text is built
  from the same vocabulary; local store in a temporary directory; one in ten a spun copy
  of an earlier probe, so some join stories), each preceded by the spider's
  ``should_fetch(url)``, are timed one by one, ``ROUND`` at a time round all the indexes,
  after 20 warm-up commits each. Reported: the median and 90th percentile per article,
  and the ratio to the smallest size.
* Index size on disk: the SQLite file (after a checkpoint) or ``pg_database_size``.

Target (issue 6): the cost at 1M at most 2x the cost at 10k.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import drop_pg, fresh_pg  # noqa: E402
from steppewatch import dedup  # noqa: E402
from steppewatch.archive import Archive  # noqa: E402
from steppewatch.index import Index, url_hash  # noqa: E402
from steppewatch.models import Article, article_id, content_hash  # noqa: E402
from steppewatch.store import LocalStore  # noqa: E402

TODAY = datetime(2025, 6, 1, tzinfo=UTC)
VOCABULARY = 40_000
ZIPF = 1.07
FUNCTION_WORDS = 100  # with these left out, unrelated articles meet at Jaccard 0.05, as the fixtures' do
LETTERS = "abcdefghijklmnoprstuvwyz"
ROUND = 10  # probes per index per round


class Vocabulary:
    """Pseudo-words with Zipfian frequencies, and each word's shingle as dedup computes it."""

    def __init__(self, seed: int = 5) -> None:
        rng = random.Random(seed)
        words: dict[str, None] = {}
        while len(words) < VOCABULARY:
            words["".join(rng.choice(LETTERS) for _ in range(rng.randint(5, 10)))] = None
        # the most frequent ranks are function words, which shingles leave out: skipped
        self.words = list(words)[FUNCTION_WORDS:]
        weights = [1 / (rank + 1) ** ZIPF for rank in range(FUNCTION_WORDS, VOCABULARY)]
        total = sum(weights)
        self.cumulative = list(_accumulate(w / total for w in weights))
        self.shingle = {w: next(iter(dedup.shingles(w, "en")), None) for w in self.words}

    def text(self, rng: random.Random, tokens: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cumulative, k=tokens)


def _accumulate(values: Any) -> list[float]:
    out, running = [], 0.0
    for v in values:
        running += v
        out.append(running)
    return out


def synthetic_rows(vocab: Vocabulary, start: int, count: int, per_day: int, seed: int) -> dict[str, list[tuple]]:
    """Rows for articles ``start`` .. ``start + count``; article n is filed n // per_day days before TODAY."""
    rng = random.Random(seed)
    rows: dict[str, list[tuple]] = {t: [] for t in ("articles", "contents", "urls", "shingles", "bands")}
    now = datetime.now(UTC)
    for n in range(start, start + count):
        day_dt = TODAY - timedelta(days=1 + n // per_day)
        day = day_dt.date().isoformat()
        url = f"http://site{n % 24}.test/news/{n}/"  # 24 sites
        aid = article_id(url)
        words = vocab.text(rng, rng.randint(250, 450))
        sh = {s for s in (vocab.shingle[w] for w in words) if s is not None}
        chash = f"{n:064x}"
        site = f"site{n % 24}"
        rows["articles"].append((aid, site, url, day, day_dt + timedelta(hours=n % 24), "en", f"Synthetic {n}",
                                 chash, aid, None, 1, f"articles/site={site}/date={day}/{aid}.json", now, now, 1))
        rows["contents"].append((chash, aid))
        rows["urls"] += [(url_hash(url), aid), (url_hash(url + "?utm_source=rss"), aid)]
        rows["shingles"].append((aid, "en", day, aid, dedup.pack(sh)))
        rows["bands"] += [(b, h, day, aid) for b, h in enumerate(dedup.band_hashes(dedup.signature(sh)))]
    return rows


COLUMNS = {
    "articles": ("id", "site", "canonical_url", "day", "published", "language", "title", "content_hash", "story_id",
                 "alias_of", "version", "key", "first_seen", "last_checked", "checks"),
    "contents": ("content_hash", "article_id"),
    "urls": ("url_hash", "article_id"),
    "shingles": ("article_id", "language", "day", "story_id", "data"),
    "bands": ("band", "hash", "day", "article_id"),
}


class BulkLoader:
    """One connection per index for the fill, kept apart from the pool the probes use.

    A bulk load is set-up, not what is measured, so it is done as a restore would do it:
    on SQLite with a large page cache and no fsync (the 1M index's 64M band rows go in
    random key order across batches); on PostgreSQL by COPY with the bands' primary key
    dropped and built again once at the end. The probes' connections keep the project's
    own settings.
    """

    def __init__(self, index: Index) -> None:
        self.index = index
        if index.is_postgres:
            self.raw = index.engine.raw_connection()
            cur = self.raw.cursor()
            cur.execute("ALTER TABLE bands DROP CONSTRAINT bands_pkey")
            self.raw.commit()
        else:
            self.raw = sqlite3.connect(index.engine.url.database, isolation_level=None)
            self.raw.execute("PRAGMA synchronous=OFF")
            self.raw.execute("PRAGMA cache_size=-4000000")  # 4 GB, only while filling

    def insert(self, rows: dict[str, list[tuple]]) -> None:
        cur = self.raw.cursor()
        if self.index.is_postgres:
            for table, columns in COLUMNS.items():
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows[table]:
                        copy.write_row(row)
            self.raw.commit()
            return
        cur.execute("BEGIN IMMEDIATE")
        for table, columns in COLUMNS.items():
            marks = ", ".join("?" * len(columns))
            # in key order: B-tree appends instead of random inserts within the batch
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                            sorted(tuple(_sqlite_datetime(v) if isinstance(v, datetime) else v for v in row)
                                   for row in rows[table]))
        cur.execute("COMMIT")

    def close(self) -> None:
        if self.index.is_postgres:
            cur = self.raw.cursor()
            cur.execute("SET LOCAL maintenance_work_mem = '1GB'")
            cur.execute("ALTER TABLE bands ADD CONSTRAINT bands_pkey PRIMARY KEY (band, hash, day, article_id)")
            self.raw.commit()
        else:
            # a batch's transaction leaves up to 2 GB of WAL; the probes' first autocheckpoint
            # would copy it back and be timed. A running index's WAL stays near its 40 MB
            # autocheckpoint, so the load ends as a checkpoint would leave it.
            self.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.raw.close()


def _sqlite_datetime(value: datetime) -> str:
    """How SQLAlchemy stores a DateTime in SQLite: naive UTC text with microseconds."""
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


PER_ARTICLE = {"articles": 1, "contents": 1, "urls": 2, "shingles": 1, "bands": dedup.BANDS}


def fill(indexes: dict[tuple[str, int], Index], vocab: Vocabulary, per_day: int) -> float:
    """Fill each index with articles 0 .. its size; each batch is generated once for all of them."""
    t0 = time.perf_counter()
    batch, target = 20_000, max(size for _, size in indexes)
    loaders = {key: BulkLoader(index) for key, index in indexes.items()}
    for lo in range(0, target, batch):
        count = min(batch, target - lo)
        rows = synthetic_rows(vocab, lo, count, per_day, seed=lo)
        for (_, size), loader in loaders.items():
            n = min(count, size - lo)
            if n > 0:
                loader.insert({t: r[:n * PER_ARTICLE[t]] for t, r in rows.items()})
        print(f"    filled {lo + count:,} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    for loader in loaders.values():
        loader.close()
    for index in indexes.values():
        if index.is_postgres:
            # what autovacuum does to an insert-only table soon after a bulk load: statistics,
            # and the visibility map that lets the band lookups be index-only scans
            with index.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE)")
    return time.perf_counter() - t0


def probe_articles(vocab: Vocabulary, size: int, count: int) -> list[Article]:
    rng = random.Random(size)
    out: list[Article] = []
    for i in range(count):
        if out and i % 10 == 9:  # a spun copy of an earlier probe: it must join that story
            source = rng.choice(out)
            words = source.text.split()
            words = [rng.choice(vocab.words) if rng.random() < 0.25 else w for w in words]
        else:
            words = vocab.text(rng, rng.randint(250, 450))
        text = "\n".join(" ".join(words[k:k + 40]) + "." for k in range(0, len(words), 40))
        url = f"http://probe.test/{size}/{i}/"
        published = TODAY + timedelta(minutes=i)
        out.append(Article(id=article_id(url), url=url, canonical_url=url, site="probe", title=f"Probe {i}",
                           text=text, published=published.isoformat(), date_source="page", language="en",
                           fetched_at=datetime.now(UTC).isoformat(), http_status=200,
                           content_hash=content_hash(text), extractor={"name": "bench"}))
    return out


def measure(index: Index, articles: list[Article], store: LocalStore, raw: bytes) -> tuple[list[float], int]:
    times, joined = [], 0
    for article in articles:
        t0 = time.perf_counter()
        if index.should_fetch(article.url):
            committed = Archive(index, store).commit(article, raw)
            joined += committed.story_id != article.id
        times.append(time.perf_counter() - t0)
    return times, joined


def size_on_disk(index: Index, path: Path | None) -> int:
    if index.is_postgres:
        with index.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar())
    raw = index.engine.raw_connection()  # outside a transaction, which a checkpoint cannot run in
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    assert path is not None
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def unrelated_jaccard(vocab: Vocabulary, pairs: int = 300) -> float:
    rng = random.Random(1)
    values = []
    for _ in range(pairs):
        a = {vocab.shingle[w] for w in vocab.text(rng, 350)} - {None}
        b = {vocab.shingle[w] for w in vocab.text(rng, 350)} - {None}
        values.append(dedup.jaccard(a, b))
    return statistics.median(values)


def run_all(urls: dict[tuple[str, int], str], paths: dict[tuple[str, int], Path | None],
            args: argparse.Namespace, vocab: Vocabulary, work: Path) -> dict[str, list[dict[str, Any]]]:
    """Fill one index per backend and size, then time their probes side by side.

    The probes go round all the indexes ``ROUND`` at a time, so whatever else the
    machine is doing weighs on every size alike and the ratios stay comparable.
    """
    indexes = {key: Index(url) for key, url in urls.items()}
    print(f"  filling {len(indexes)} indexes to {max(s for _, s in indexes):,}", file=sys.stderr)
    fill_s = fill(indexes, vocab, args.per_day)
    raw = (b"<html><body>" + b"x" * 40_000 + b"</body></html>")
    probes = {key: probe_articles(vocab, key[1], args.probes + 20) for key in indexes}
    stores = {key: LocalStore(work / f"store-{key[0]}-{key[1]}") for key in indexes}
    times: dict[tuple[str, int], list[float]] = {key: [] for key in indexes}
    joined = dict.fromkeys(indexes, 0)
    for lo in range(0, args.probes + 20, ROUND):
        for key, index in indexes.items():
            t, j = measure(index, probes[key][lo:lo + ROUND], stores[key], raw)
            times[key] += t if lo >= 20 else []  # the first 20 of each index warm it up
            joined[key] += j
    results: dict[str, list[dict[str, Any]]] = {}
    for (label, size), index in indexes.items():
        t = times[(label, size)]
        r = {"size": size, "median_ms": statistics.median(t) * 1000, "p90_ms": statistics.quantiles(t, n=10)[-1] * 1000,
             "joined": joined[(label, size)], "bytes": size_on_disk(index, paths[(label, size)]), "fill_s": fill_s,
             "window": min(size, args.per_day * dedup.MAX_DAYS_APART)}
        results.setdefault(label, []).append(r)
        print(f"  {label} {size:,}: median {r['median_ms']:.2f} ms, p90 {r['p90_ms']:.2f} ms, "
              f"{r['bytes'] / 2**20:.0f} MiB", file=sys.stderr)
        index.engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--per-day", type=int, default=2740, help="articles per day (1M a year: 2740)")
    parser.add_argument("--pg", metavar="URL", help="also measure PostgreSQL (a database beside this one is created)")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    vocab = Vocabulary()
    work = Path(tempfile.mkdtemp(prefix="sw-dedup-"))
    urls: dict[tuple[str, int], str] = {}
    paths: dict[tuple[str, int], Path | None] = {}
    for size in sizes:
        if not args.no_sqlite:
            paths[("SQLite", size)] = work / f"index-{size}.sqlite"
            urls[("SQLite", size)] = f"sqlite:///{paths[('SQLite', size)]}"
        if args.pg:
            paths[("PostgreSQL", size)] = None
            urls[("PostgreSQL", size)] = fresh_pg(args.pg, f"sw_bench_dedup_{size}")
    try:
        backends = run_all(urls, paths, args, vocab, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for size in sizes if args.pg else []:
            drop_pg(args.pg, f"sw_bench_dedup_{size}")
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    print(f"## Dedup and index cost as the index grows ({args.probes} probes per size)\n")
    print(f"Machine: {os.cpu_count()} cores, {model}, Python {platform.python_version()}  \n"
          f"Command: `.venv/bin/python bench/dedup_scaling.py --sizes {args.sizes} --probes {args.probes} "
          f"--per-day {args.per_day}{' --pg ' + args.pg if args.pg else ''}`  \n"
          f"Synthetic fill: median Jaccard of two unrelated articles {unrelated_jaccard(vocab):.3f} "
          f"(stemmed content words, Zipf {ZIPF} over {VOCABULARY:,} words), {args.per_day:,} articles a day.\n")
    print("| backend | articles in index | of them within the probes' window | per article, median (ms) | p90 (ms) "
          "| vs smallest | index on disk | probes joining a story |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, results in backends.items():
        base = results[0]["median_ms"]
        for r in results:
            print(f"| {label} | {r['size']:,} | {r['window']:,} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | "
                  f"{r['median_ms'] / base:.2f}x | {r['bytes'] / 2**20:,.0f} MiB | {r['joined']} |")
    fill_s = next(iter(backends.values()))[0]["fill_s"]
    print(f"\nAll indexes filled in {fill_s:.0f} s (each batch generated once for all of them). Probes timed "
          f"{ROUND} at a time round the indexes, so load from elsewhere weighs on each alike.")
    print("\nPer article: `should_fetch` (URL lookup) + `Index.commit` (content claim, LSH candidates within a "
          "week either side, exact Jaccard checks, record and raw page to a local store, index rows). "
          "Target: 1M at most 2x 10k.")


if __name__ == "__main__":
    main()
