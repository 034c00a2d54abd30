"""Peak memory of one long crawl: RSS at 10k, 50k and 100k pages.

    .venv/bin/python bench/memory.py [--pages 100000] [--marks 10000,50000,100000]

Synthetic article pages (short English news pages, generated on the fly, nothing written
to disk) are served from 127.0.0.1 by a small threaded server; one site lists them all
in news sitemaps of 10,000 URLs each, as large news sites split theirs. One
``steppewatch crawl`` process fetches, extracts, dedups and stores them (local store,
SQLite index, politeness off) while this script samples the crawl process's resident
set (VmRSS) every half second, keyed by how many article pages the server has served.
Prints the peak RSS up to each mark. Target (issue 6): at most 400 MB and flat.

Pages are dated ``PER_DAY`` a day, as a backfill of a year of 20+ sites is (1M pages a
year), so the dedup window of a week either side holds what it would in that backfill:
100k pages are 37 days of it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HOST = "bigsite.test"
PER_SITEMAP = 10_000
WORDS = ("government ministry region river steppe election budget railway grain export parliament "
         "minister capital border talks energy pipeline tariff harvest school hospital court bank "
         "currency inflation airport highway mining copper uranium festival museum weather drought "
         "water glacier reform investment transport citizens council agreement delegation").split()
PER_DAY = 2740
FIRST_DAY = date(2024, 11, 1)


def day_of(n: int) -> date:
    return FIRST_DAY + timedelta(days=n // PER_DAY)


def page(n: int) -> bytes:
    rng = random.Random(n)
    title = " ".join(rng.choice(WORDS) for _ in range(7)).capitalize() + f" {n}"
    paras = "".join(
        "<p>" + " ".join(f"{rng.choice(WORDS)}{rng.randrange(5000)}" if rng.random() < 0.4 else rng.choice(WORDS)
                         for _ in range(rng.randint(60, 110))) + ".</p>"
        for _ in range(rng.randint(4, 8)))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<link rel="canonical" href="http://{HOST}/a/{n}"><meta property="og:type" content="article">'
            f'<meta property="article:published_time" content="{day_of(n).isoformat()}T10:00:00Z"></head><body>'
            f'<nav><a href="/">Home</a> <a href="/news/">News</a></nav><aside><h3>Latest news</h3><ul>'
            + "".join(f"<li><a href='/a/{n - k}'>Headline {n - k}</a></li>" for k in range(1, 8))
            + f"</ul></aside><article><h1>{title}</h1>{paras}</article><footer>© Big Site</footer>"
            f"</body></html>").encode()


class Site:
    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.served = 0
        self.lock = threading.Lock()

    def respond(self, path: str) -> tuple[int, str, bytes]:
        if path == "/robots.txt":
            return 200, "text/plain", b"User-agent: *\nAllow: /\n"
        if path == "/sitemap.xml":
            parts = (self.pages + PER_SITEMAP - 1) // PER_SITEMAP
            body = "".join(f"<sitemap><loc>http://{HOST}/sitemap-{k}.xml.gz</loc></sitemap>" for k in range(parts))
            return 200, "application/xml", (
                '<?xml version="1.0" encoding="UTF-8"?><sitemapindex '
                f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</sitemapindex>').encode()
        if path.startswith("/sitemap-"):
            k = int(path.removeprefix("/sitemap-").split(".")[0])
            urls = range(k * PER_SITEMAP, min(self.pages, (k + 1) * PER_SITEMAP))
            rows = "".join(f"<url><loc>http://{HOST}/a/{n}</loc><lastmod>{day_of(n).isoformat()}</lastmod></url>"
                           for n in urls)
            xml = ('<?xml version="1.0" encoding="UTF-8"?><urlset '
                   f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</urlset>').encode()
            return 200, "application/x-gzip", gzip.compress(xml, mtime=0)
        if path.startswith("/a/"):
            with self.lock:
                self.served += 1
            return 200, "text/html; charset=utf-8", page(int(path[3:]))
        return 404, "text/plain", b"not found"


def serve(site: Site) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split(HOST, 1)[-1] if "://" in self.path else self.path
            status, ctype, body = site.respond(path)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--marks", default="10000,50000,100000")
    args = parser.parse_args()
    marks = [int(m) for m in args.marks.split(",")]
    site = Site(args.pages)
    server = serve(site)
    work = Path(tempfile.mkdtemp(prefix="sw-mem-"))
    registry = {"sites": [{"id": "bigsite", "name": "Big Site", "country": "KZ", "languages": ["en"],
                           "allowed_domains": [HOST], "timezone": "UTC",
                           "sitemaps": [{"url": f"http://{HOST}/sitemap.xml"}]}]}
    (work / "sites.yaml").write_text(yaml.safe_dump(registry))
    env = dict(os.environ, STEPPEWATCH_SITES=str(work / "sites.yaml"),
               STEPPEWATCH_PROXY=f"http://127.0.0.1:{server.server_address[1]}",
               STEPPEWATCH_STORE=str(work / "store"), STEPPEWATCH_INDEX_URL=f"sqlite:///{work}/index.sqlite")
    args_ = [sys.executable, "-m", "steppewatch.cli", "crawl", "bigsite", "--since", f"{FIRST_DAY}T00:00Z",
             "--until", f"{day_of(args.pages) + timedelta(days=1)}T00:00Z", "--json",
             "--set", "AUTOTHROTTLE_ENABLED=False",
             "--set", "DOWNLOAD_DELAY=0", "--set", "CONCURRENT_REQUESTS_PER_DOMAIN=16", "--set", "LOG_LEVEL=WARNING",
             "--set", "NEWS_MAX_CHILD_SITEMAPS=1000"]
    samples: list[tuple[int, float]] = []
    start = time.monotonic()
    try:
        proc = subprocess.Popen(args_, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
        reader.start()
        while proc.poll() is None:
            try:
                samples.append((site.served, rss_mb(proc.pid)))
            except OSError:
                break
            if len(samples) % 120 == 0:  # progress for whoever watches a run of an hour
                print(f"  {samples[-1][0]:,} pages served, RSS {samples[-1][1]:.0f} MB", file=sys.stderr)
            time.sleep(0.5)
        reader.join()
        summary = json.loads(out[0])
    finally:
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - start
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    print(f"## Memory of one crawl ({args.pages} pages)\n")
    print(f"Machine: {os.cpu_count()} cores, {model}, Python {platform.python_version()}  \n"
          f"Command: `.venv/bin/python bench/memory.py --pages {args.pages} --marks {args.marks}`\n")
    print("| pages served | peak RSS so far (MB) |\n|---:|---:|")
    for mark in marks:
        upto = [rss for served, rss in samples if served <= mark]
        if upto:
            print(f"| {mark} | {max(upto):.0f} |")
    print(f"\nStored {summary['totals']['stored']} of {args.pages} pages in {elapsed:.0f} s "
          f"({args.pages / elapsed:.0f} pages/s); {len(samples)} samples; target: ≤ 400 MB and flat.")


if __name__ == "__main__":
    main()
