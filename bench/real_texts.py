"""Extract the real pages of ``../shared/extraction-dev`` once, for the story benches.

Usage: python bench/real_texts.py PATH [CACHE]

Each page goes through the project's extractor (``pipelines.extract.extract_page`` with
``adhoc_site``, as ``steppewatch extract`` does); the articles' texts are cached as JSON
outside the repository (default ``/tmp/steppewatch-real-texts.json``), keyed by a short
id (sha256 of the page's URL, 12 hex digits), so labels in the repository name pages
without copying them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.extract import extract_page  # noqa: E402
from steppewatch.models import Article  # noqa: E402
from steppewatch.registry import adhoc_site  # noqa: E402

DEFAULT_CACHE = Path("/tmp/steppewatch-real-texts.json")


def page_id(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]


def site_of(url: str) -> str:
    """The site a page belongs to: the host, the archived host of a Wayback Machine URL, or
    the ``host-slug.html`` prefix some of the set's keys carry instead of a URL."""
    if url.startswith("https://web.archive.org/web/"):
        url = url.split("/", 5)[5]
    host = urlsplit(url).hostname
    if host:
        return host.removeprefix("www.")
    return url.split("-", 1)[0]


def _extract(args: tuple[str, str, str]) -> dict | None:
    root, url, file = args
    url = url.removeprefix("hard::")
    try:
        result = extract_page(gzip.decompress((Path(root) / file).read_bytes()), url, adhoc_site(url))
    except Exception:  # noqa: BLE001 (a page the extractor fails on is simply not in the set)
        return None
    if not isinstance(result, Article):
        return None
    return {"id": page_id(url), "url": url, "site": site_of(url),
            "language": result.language or "", "published": result.published or "", "text": result.text}


def load(root: Path, cache: Path = DEFAULT_CACHE) -> list[dict]:
    """The extracted articles of the pages under ``root`` (from the cache when present)."""
    if cache.exists():
        return [{**item, "site": site_of(item["url"])} for item in json.loads(cache.read_text("utf-8"))]
    expected = json.loads((root / "expected.json").read_text("utf-8"))
    jobs = [(str(root), url, item["file"]) for url, item in expected.items()]
    with ProcessPoolExecutor(max_workers=2) as pool:
        items = [r for r in pool.map(_extract, jobs, chunksize=8) if r is not None]
    cache.write_text(json.dumps(items, ensure_ascii=False), "utf-8")
    return items


if __name__ == "__main__":
    root = Path(sys.argv[1])
    items = load(root, Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_CACHE)
    print(f"{len(items)} articles extracted")
