"""Extraction on real pages: the project against bare trafilatura, side by side in one run.

Usage: python bench/extraction_real.py PATH [--limit N]

PATH is a folder laid out as ``../shared/extraction-dev`` is (``expected.json`` mapping
each page's URL to its gzipped file and to the passages that must (``with``) and must
not (``without``) be in the main text). The pages stay there: nothing is copied.

Both extractors see the same bytes and the same URL, each in its own process, the two
processes at the same time (so machine load weighs alike on both, and neither warms the
other's caches):

- the project: ``pipelines.extract.extract_page`` with a registry record made for the
  page's host (``adhoc_site``), as ``steppewatch extract`` does;
- bare trafilatura: ``bare_extraction`` with the project's options (the ones in
  ``pipelines.extract.TRAFILATURA_OPTIONS``), nothing before or after it.

Scoring as the set's README defines it: whitespace normalised, each ``with`` passage
found is a true positive, missing a false negative; each ``without`` passage found a false
positive. Precision, recall and F1 are over all passages of all pages; a rejected or empty
page finds nothing. Rejected and empty pages are listed with their reason and URL.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from pipelines.extract import TRAFILATURA_OPTIONS, extract_page  # noqa: E402
from steppewatch.models import Rejection  # noqa: E402
from steppewatch.registry import adhoc_site  # noqa: E402

NAMES = ("project", "bare trafilatura")


@dataclass
class Score:
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0
    seconds: float = 0.0
    pages: int = 0
    outcomes: list[tuple[str, str, str]] = field(default_factory=list)  # (reason, detail, url)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _norm(text: str) -> str:
    return " ".join(text.split())


def score_page(text: str, expected: dict, score: Score) -> None:
    text = _norm(text)
    for passage in expected.get("with", []):
        if _norm(passage) in text:
            score.tp += 1
        else:
            score.fn += 1
    for passage in expected.get("without", []):
        if _norm(passage) in text:
            score.fp += 1
        else:
            score.tn += 1


def run_project(body: bytes, url: str) -> tuple[str, tuple[str, str] | None]:
    result = extract_page(body, url, adhoc_site(url))
    if isinstance(result, Rejection):
        return "", (result.reason.value, result.detail)
    return result.text, None


def run_bare(body: bytes, url: str) -> tuple[str, tuple[str, str] | None]:
    doc = trafilatura.bare_extraction(body, url=url, **TRAFILATURA_OPTIONS)
    text = (doc.as_dict().get("text") or "") if doc is not None else ""
    return text, None


RUNNERS = {"project": run_project, "bare trafilatura": run_bare}


def score_pages(root: Path, items: list[tuple[str, dict]], name: str) -> Score:
    runner, score = RUNNERS[name], Score()
    for key, expected in items:
        url = key.removeprefix("hard::")
        body = gzip.decompress((root / expected["file"]).read_bytes())
        start = time.perf_counter()
        text, rejected = runner(body, url)
        score.seconds += time.perf_counter() - start
        score.pages += 1
        if rejected:
            score.outcomes.append((rejected[0], rejected[1], url))
        elif not text.strip():
            score.outcomes.append(("empty", "", url))
        score_page(text, expected, score)
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="folder with expected.json and pages/ (../shared/extraction-dev)")
    parser.add_argument("--limit", type=int, help="only the first N pages")
    args = parser.parse_args(argv)
    try:
        expected = json.loads((args.path / "expected.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        print(f"extraction_real: {args.path / 'expected.json'}: {exc}", file=sys.stderr)
        return 2
    items = sorted(expected.items(), key=lambda kv: kv[1]["file"])[: args.limit]
    # one process per extractor, at the same time: the same machine load on both, and
    # neither warms the caches of the other (trafilatura's and htmldate's lru_caches made
    # whichever ran second on a page up to a third faster)
    with ProcessPoolExecutor(2) as pool:
        futures = [pool.submit(score_pages, args.path, items, name) for name in NAMES]
        project, bare = (f.result() for f in futures)

    print(f"## Extraction on real pages ({len(items)} pages of {args.path.name})\n")
    print(f"Machine: {platform.machine()}, Python {platform.python_version()}, "
          f"trafilatura {trafilatura.__version__}  ")
    print(f"Command: `.venv/bin/python bench/extraction_real.py {args.path}"
          + (f" --limit {args.limit}" if args.limit else "") + "`  ")
    print(f"Options of both: {', '.join(f'{k}={v}' for k, v in TRAFILATURA_OPTIONS.items())}\n")
    print("| extractor | precision | recall | F1 | rejected | empty | pages/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, s in zip(NAMES, (project, bare), strict=True):
        rejected = sum(1 for o in s.outcomes if o[0] != "empty")
        empty = sum(1 for o in s.outcomes if o[0] == "empty")
        rate = f"{s.pages / s.seconds:.1f}" if s.seconds else "—"
        print(f"| {name} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} | {rejected} | {empty} | {rate} |")
    print(f"\nF1 project − bare: {project.f1 - bare.f1:+.4f}; speed project / bare: "
          f"{(project.pages / project.seconds) / (bare.pages / bare.seconds):.2f} (each in its own process, "
          "both at once)")
    for name, s in zip(NAMES, (project, bare), strict=True):
        if not s.outcomes:
            print(f"\n{name}: no page rejected or empty.")
            continue
        reasons = Counter(o[0] for o in s.outcomes)
        print(f"\n{name}: {len(s.outcomes)} pages rejected or empty "
              f"({', '.join(f'{r} {n}' for r, n in reasons.most_common())})\n")
        for reason, detail, url in sorted(s.outcomes):
            # the set holds a few home pages: rejecting those as listings is right
            home = " — a site's home page" if urlsplit(url).path in ("", "/") else ""
            print(f"- {reason}" + (f" ({detail})" if detail else "") + f": {url}{home}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
