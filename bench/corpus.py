"""A synthetic corpus of news article pages, built from the fixture sites' own pages.

Each fixture article page (tests/fixtures/sites/, four sites: English, Russian in cp1251,
Kazakh/Russian, English with AMP) is a template: its chrome (ticker, "Latest news"
sidebar, teasers, comment form, footer) is kept byte for byte, while the URL, title and
body are replaced by generated ones of realistic length (4-12 paragraphs, 1.5k-6k
characters, median about 3k) in the template's language, from the fixture texts' own
vocabulary. A few percent mention "Astana talks", so the alert rules have work to do.

``build(root, pages)`` writes the pages, a plain sitemap per site and robots.txt in the
ReplayServer layout, and a registry (``sites.yaml``) whose sites keep the fixtures'
extraction settings but discover only through that sitemap. Deterministic for a seed.
"""

from __future__ import annotations

import gzip
import html
import random
import re
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures"
SINCE, UNTIL = "2024-12-01T00:00:00Z", "2024-12-08T00:00:00Z"
CHARSETS = {"kazinfo.test": "cp1251"}
ASTANA = {"en": "the Astana talks", "ru": "переговоры в Астане", "kk": "Астана келіссөздері"}


@dataclass
class Template:
    site: str
    host: str
    path: str
    lang: str
    charset: str
    page: str  # decoded, with \x00BODY\x00 \x00TITLE\x00 \x00PATH\x00 placeholders
    words: list[str]


def _site_data() -> dict[str, list[dict]]:
    return {p.stem: runpy.run_path(str(p))["ARTICLES"] for p in sorted((FIX / "site_data").glob("*.py"))}


def _paragraphs(body: str) -> list[str]:
    out = []
    for chunk in body.strip().split("\n\n"):
        chunk = " ".join(chunk.split())
        for prefix in ("## ", "> ", "Q: "):
            chunk = chunk.removeprefix(prefix)
        out.append(chunk)
    return out


def templates() -> list[Template]:
    sys.path.insert(0, str(ROOT))
    from steppewatch.replay import ReplayServer

    golden = {p.stem: yaml.safe_load(p.read_text("utf-8")) for p in sorted((FIX / "golden").glob("*.yaml"))}
    data = _site_data()
    server = ReplayServer(FIX / "sites")
    out = []
    for site, g in golden.items():
        by_title = {a["title"]: a for a in data[site]}
        for art in g["articles"]:
            source = by_title.get(art["title"])
            if source is None or "body" not in source:  # syndicated copies borrow another site's body
                continue
            parts = urlsplit(art["url"])
            host = parts.hostname or ""
            status, body = 0, b""
            for _ in range(3):  # fault routes answer 500/429 first
                status, _headers, body = server.respond(host, parts.path, "bench (+http://bench)")
                if status == 200:
                    break
            if status != 200:
                continue
            charset = CHARSETS.get(host, "utf-8")
            page = body.decode(charset, "replace")
            paras = [html.escape(p, quote=True) for p in _paragraphs(source["body"])]
            if not all(p in page for p in paras):
                continue
            page = page.replace(paras[0], "\x00BODY\x00", 1)
            for p in paras[1:]:
                page = page.replace(f"<p>{p}</p>", "").replace(p, "")
            for title in {html.escape(art["title"], quote=True), art["title"]}:
                page = page.replace(title, "\x00TITLE\x00")
            page = page.replace(parts.path, "\x00PATH\x00")
            words = re.findall(r"\w+", " ".join(_paragraphs(source["body"])))
            out.append(Template(site, host, parts.path, art.get("language") or "en", charset, page, words))
    return out


def _sentence(rng: random.Random, words: tuple[list[str], list[str]]) -> str:
    frequent, topic = words
    s = " ".join(rng.choice(frequent if rng.random() < 0.35 else topic) for _ in range(rng.randint(8, 22)))
    return s[:1].upper() + s[1:] + "."


def _lexicon(words: list[str], seed: int, size: int = 20_000) -> tuple[list[str], list[str]]:
    """(frequent words, a large topic vocabulary): the fixture words plus word-like blends.

    Articles draw about a third of their tokens from the frequent (mostly function) words
    and the rest from a topic vocabulary of their own, so unrelated pages share few
    content words, as real unrelated news stories do.
    """
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    for w in words:
        counts[w.lower()] = counts.get(w.lower(), 0) + 1
    frequent = sorted(counts, key=lambda w: -counts[w])[:40]
    real = [w for w in counts if len(w) > 3]
    blends = {a[: len(a) // 2 + 1] + b[len(b) // 2:] for a, b in
              ((rng.choice(real), rng.choice(real)) for _ in range(size))}
    return frequent, sorted(set(real) | blends)


def _body(rng: random.Random, words: tuple[list[str], list[str]], astana: str | None) -> list[str]:
    target = min(6000, max(1500, int(rng.lognormvariate(8.0, 0.35))))  # median ~3k characters
    paras: list[str] = []
    while sum(map(len, paras)) < target or len(paras) < 4:
        paras.append(" ".join(_sentence(rng, words) for _ in range(rng.randint(2, 5))))
        if len(paras) >= 12:
            break
    if astana:
        paras[rng.randrange(len(paras))] += f" Officials spoke about {astana} again."
    return paras


def build(root: Path, pages: int, seed: int = 7) -> dict[str, object]:
    """Write ``pages`` article pages under ``root``; return the registry path and page list."""
    rng = random.Random(seed)
    temps = templates()
    pools: dict[str, list[str]] = {}
    for t in temps:
        pools.setdefault(t.lang[:2], []).extend(t.words)
    lexicons = {lang: _lexicon(words, seed) for lang, words in pools.items()}
    by_site: dict[str, list[Template]] = {}
    for t in temps:
        by_site.setdefault(t.site, []).append(t)
    sites = sorted(by_site)
    registry = {s["id"]: s for s in yaml.safe_load((FIX / "sites.yaml").read_text("utf-8"))["sites"]}
    urls: dict[str, list[str]] = {s: [] for s in sites}
    listing: list[dict[str, str]] = []
    for n in range(pages):
        site = sites[n % len(sites)]
        t = rng.choice(by_site[site])
        frequent, vocabulary = lexicons[t.lang[:2]]
        words = (frequent, rng.sample(vocabulary, 200))  # this article's topic
        astana = ASTANA.get(t.lang[:2], ASTANA["en"]) if rng.random() < 0.03 else None
        paras = _body(rng, words, astana)
        title = " ".join(rng.choice(words[1]) for _ in range(rng.randint(5, 10))).capitalize()
        path = f"/bench/{n:07d}-{rng.getrandbits(32):08x}"
        body = "</p>\n<p>".join(html.escape(p, quote=True) for p in paras)
        page = (t.page.replace("\x00BODY\x00", body).replace("\x00TITLE\x00", html.escape(title, quote=True))
                .replace("\x00PATH\x00", path))
        target = root / t.host / path.lstrip("/")  # the replay server maps a path without a suffix to its file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(page.encode(t.charset, "replace"))
        urls[site].append(f"http://{t.host}{path}")
        listing.append({"site": site, "url": f"http://{t.host}{path}", "file": str(target)})
    entries = []
    for site in sites:
        host = by_site[site][0].host
        rows = "".join(f"<url><loc>{u}</loc><lastmod>2024-12-04</lastmod></url>" for u in urls[site])
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
               f"{rows}</urlset>")
        (root / host).mkdir(parents=True, exist_ok=True)
        (root / host / "bench-sitemap.xml.gz").write_bytes(gzip.compress(xml.encode(), mtime=0))
        (root / host / "robots.txt").write_text("User-agent: *\nDisallow: /admin/\n")
        (root / host / "_site.yaml").write_text(f"charset: {by_site[site][0].charset}\n")
        entry = {k: v for k, v in registry[site].items() if k not in ("feeds", "sitemaps", "listings")}
        entry["sitemaps"] = [{"url": f"http://{host}/bench-sitemap.xml.gz"}]
        entries.append(entry)
    (root / "sites.yaml").write_text(yaml.safe_dump({"sites": entries}, allow_unicode=True), "utf-8")
    return {"registry": root / "sites.yaml", "pages": listing}
