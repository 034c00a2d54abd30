"""Measure trafilatura settings on the fixture articles: boilerplate leaked vs body kept.

Usage: python bench/extraction_settings.py
For every golden article of tests/fixtures, extract the page under several settings
and count (a) boilerplate lines of the site found in the text, (b) golden must-contain
paragraphs missing from it. The result table is copied into docs/EXTRACTION.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import trafilatura
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.extract import _clean_text, _parse, _prune  # noqa: E402
from steppewatch.encoding import decode_body  # noqa: E402
from steppewatch.registry import load_registry  # noqa: E402
from steppewatch.replay import ReplayServer  # noqa: E402

FIX = ROOT / "tests" / "fixtures"


def page_bytes(server: ReplayServer, url: str) -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    for _ in range(3):  # fault routes answer 500/429 first
        status, _headers, body = server.respond(parts.hostname or "", target, "bench (+http://x)")
        if status == 200:
            return body
    raise AssertionError(f"{url}: HTTP {status}")


CONFIGS = {
    "trafilatura defaults": dict(prune=False, clean=False, include_comments=True),
    "include_comments=False": dict(prune=False, clean=False, include_comments=False),
    "+ favor_precision": dict(prune=False, clean=False, include_comments=False, favor_precision=True),
    "+ favor_recall": dict(prune=False, clean=False, include_comments=False, favor_recall=True),
    "+ favor_precision + marker cleaning": dict(prune=False, clean=True, include_comments=False,
                                                favor_precision=True),
    "+ pruning + marker cleaning": dict(prune=True, clean=True, include_comments=False),
    "shipped: pruning + cleaning + favor_precision": dict(prune=True, clean=True, include_comments=False,
                                                          favor_precision=True),
}


def plain(tree):  # noqa: ANN001, ANN201
    """The same page with its semantic hints removed: every container a bare <div>."""
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag in ("aside", "nav", "footer", "header", "article", "form", "section", "main"):
            el.tag = "div"
        for attr in ("class", "id", "role", "itemprop"):
            el.attrib.pop(attr, None)
    return tree


def main() -> None:
    for variant in ("as served", "plain markup (no semantic tags, classes or ids)"):
        print(f"\n### {variant}\n")
        table(variant != "as served")


def table(make_plain: bool) -> None:
    registry = load_registry(FIX / "sites.yaml")
    server = ReplayServer(FIX / "sites")
    rows = []
    goldens = {p.stem: yaml.safe_load(p.read_text("utf-8")) for p in sorted((FIX / "golden").glob("*.yaml"))}
    for name, cfg in CONFIGS.items():
        pages = leaks = leaky_pages = missing = paragraphs = 0
        for site_id, golden in goldens.items():
            site = registry.get(site_id)
            boiler = set(golden.get("boilerplate", [])) | set(golden.get("sidebar_titles", []))
            boiler |= {line for a in golden["articles"] for line in a.get("must_not_contain", [])}
            for art in golden["articles"]:
                html, _ = decode_body(page_bytes(server, art["url"]), None)
                tree = _parse(html)
                if make_plain:
                    tree = plain(tree)
                cfg2 = {k: v for k, v in cfg.items() if k not in ("prune", "clean")}
                if cfg["prune"]:
                    tree = _prune(tree, site)
                doc = trafilatura.bare_extraction(tree, url=art["url"], with_metadata=True, deduplicate=False, **cfg2)
                text = doc.as_dict().get("text") or "" if doc else ""
                if cfg["clean"]:
                    text = _clean_text(text, art["title"])
                elif text.startswith(art["title"] + "\n"):
                    text = text[len(art["title"]) + 1:]
                lines = set(text.splitlines())
                found = [b for b in boiler - {art["title"]} if b in lines or (len(b) >= 25 and b in text)]
                pages += 1
                leaks += len(found)
                leaky_pages += bool(found)
                for para in art.get("must_contain", []):
                    paragraphs += 1
                    missing += para not in text
        rows.append((name, pages, leaky_pages, leaks, f"{paragraphs - missing}/{paragraphs}"))
    print("| settings | pages | pages with boilerplate | boilerplate lines leaked | body paragraphs kept |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
