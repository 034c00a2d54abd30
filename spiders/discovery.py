"""Parse discovery sources (feeds, sitemaps, listing pages) into dated article links.

Pure functions of a response body, testable without a crawler. XML is parsed with
entity resolution and network access off and a size cap, so a hostile feed can
neither expand entities nor fetch external ones. Scrapy's own sitemap parser drops
the nested Google News fields, so ``news:publication_date``/``news:title`` are read
here; gzipped sitemaps are inflated with a cap against decompression bombs.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import lxml.html
from lxml import etree

from steppewatch.dates import parse_date
from steppewatch.encoding import decode_body
from steppewatch.urls import is_http_url

MAX_XML_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    url: str
    published: datetime | None = None
    has_time: bool = True
    title: str | None = None


@dataclass
class Parsed:
    """What a source yielded: entries, child sitemaps, or an error saying what was wrong."""

    kind: str  # rss | rdf | atom | sitemapindex | urlset | listing | html | invalid
    entries: list[Entry] = field(default_factory=list)
    children: list[Entry] = field(default_factory=list)
    next_pages: list[str] = field(default_factory=list)
    error: str | None = None


class SourceError(ValueError):
    pass


def _parser(recover: bool) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, recover=recover,
        remove_comments=True, remove_pis=True, load_dtd=False,
    )


def inflate(body: bytes, limit: int = MAX_XML_BYTES) -> bytes:
    """Gunzip if gzipped (by magic bytes), refusing to inflate beyond ``limit``."""
    if not body.startswith(b"\x1f\x8b"):
        return body
    out = io.BytesIO()
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for start in range(0, len(body), 65536):
        out.write(decomp.decompress(body[start:start + 65536], limit + 1 - out.tell()))
        if out.tell() > limit:
            raise SourceError(f"gzip inflates beyond {limit} bytes")
    return out.getvalue()


def _local(tag: object) -> str:
    return etree.QName(tag).localname.lower() if isinstance(tag, str) else ""


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    value = "".join(el.itertext()).strip()
    return value or None


def _child(el: etree._Element, *names: str) -> etree._Element | None:
    for child in el:
        if _local(child.tag) in names:
            return child
    return None


def _looks_html(body: bytes) -> bool:
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]


def _root(body: bytes) -> tuple[etree._Element, str | None]:
    """The document root, and a note if it only parsed in recovery mode (truncated feeds)."""
    body = inflate(body)
    if len(body) > MAX_XML_BYTES:
        raise SourceError(f"XML larger than {MAX_XML_BYTES} bytes")
    if not body.strip():
        raise SourceError("empty body")
    if _looks_html(body):
        raise SourceError("HTML page where XML was expected")
    try:
        return etree.fromstring(body, _parser(recover=False)), None
    except etree.XMLSyntaxError as exc:
        strict_error = f"invalid XML: {exc}"
    try:
        root = etree.fromstring(body, _parser(recover=True))
    except etree.XMLSyntaxError:
        root = None
    if root is None:
        raise SourceError(strict_error)
    return root, strict_error


def _date(value: str | None, tz: ZoneInfo) -> tuple[datetime | None, bool]:
    """(published, has_time) of one entry; a date that cannot be read is no date."""
    found = parse_date(value, tz)
    return (found.when, found.has_time) if found else (None, True)


def parse_feed(body: bytes, url: str, tz: ZoneInfo) -> Parsed:
    """RSS 2.0, RSS 1.0 (RDF) or Atom. A 200 with HTML is reported as kind 'html'."""
    try:
        root, note = _root(body)
    except SourceError as exc:
        if "HTML" in str(exc):
            return Parsed("html", error="HTML page where a feed was expected")
        return Parsed("invalid", error=str(exc))
    top = _local(root.tag)
    if top == "html":
        return Parsed("html", error="HTML page where a feed was expected")
    if top == "rss":
        kind, items = "rss", [i for ch in root if _local(ch.tag) == "channel" for i in ch if _local(i.tag) == "item"]
    elif top == "rdf":
        kind, items = "rdf", [i for i in root if _local(i.tag) == "item"]
    elif top == "feed":
        kind, items = "atom", [i for i in root if _local(i.tag) == "entry"]
    else:
        return Parsed("invalid", error=f"not a feed: root element <{top}>")
    entries = []
    for item in items:
        link = None
        if kind == "atom":
            for ln in item:
                if _local(ln.tag) == "link" and ln.get("rel", "alternate") == "alternate":
                    link = ln.get("href")
                    break
        else:
            link = _text(_child(item, "link")) or item.get("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about")
            if not link:
                guid = _child(item, "guid")
                if guid is not None and guid.get("isPermaLink", "true") != "false":
                    link = _text(guid)
        if not link:
            continue
        try:
            absolute = urljoin(url, link.strip())
        except ValueError:  # a broken IPv6 host: no link, like the non-http ones
            continue
        if not is_http_url(absolute):
            continue
        raw_date = _text(_child(item, "pubdate", "date", "published", "updated", "issued", "modified"))
        try:
            published, has_time = _date(raw_date, tz)
        except Exception:  # a date that cannot be read loses the entry its date, not its URL
            published, has_time = None, True
        entries.append(Entry(absolute, published, has_time, _text(_child(item, "title"))))
    return Parsed(kind, entries=entries, error=note if not entries else None)


def parse_sitemap(body: bytes, url: str, tz: ZoneInfo) -> Parsed:
    """A sitemap index (children) or urlset (entries), Google News fields included."""
    try:
        root, note = _root(body)
    except SourceError as exc:
        if "HTML" in str(exc):
            return Parsed("html", error="HTML page where a sitemap was expected")
        return Parsed("invalid", error=str(exc))
    top = _local(root.tag)
    if top not in ("sitemapindex", "urlset"):
        return Parsed("invalid", error=f"not a sitemap: root element <{top}>")
    out = Parsed(top)
    for node in root:
        name = _local(node.tag)
        if name not in ("sitemap", "url"):
            continue
        loc = _text(_child(node, "loc"))
        if not loc:
            continue
        try:
            absolute = urljoin(url, loc)
        except ValueError:  # a broken IPv6 host: no link, like the non-http ones
            continue
        if not is_http_url(absolute):
            continue
        raw_date, title = None, None
        news = _child(node, "news")
        if news is not None:
            raw_date = _text(_child(news, "publication_date"))
            title = _text(_child(news, "title"))
        raw_date = raw_date or _text(_child(node, "lastmod"))
        try:
            published, has_time = _date(raw_date, tz)
        except Exception:  # a date that cannot be read loses the entry its date, not its URL
            published, has_time = None, True
        entry = Entry(absolute, published, has_time, title)
        (out.children if top == "sitemapindex" else out.entries).append(entry)
    if note and not (out.children or out.entries):
        out.error = note
    return out


def parse_listing(
    body: bytes, url: str, tz: ZoneInfo, article_pattern: str, content_type: str | None = None
) -> Parsed:
    """Links matching the article pattern, dated by a nearby <time datetime> if any."""
    text, _ = decode_body(body, content_type)
    try:
        tree = lxml.html.fromstring(text)
    except (etree.ParserError, ValueError):
        return Parsed("invalid", error="unparseable HTML")
    pattern = re.compile(article_pattern)
    seen: dict[str, Entry] = {}
    for a in tree.xpath("//a[@href]"):
        try:
            absolute = urljoin(url, a.get("href", "").strip()).split("#")[0]
        except ValueError:  # a broken IPv6 host: no link
            continue
        if not is_http_url(absolute) or not pattern.search(absolute) or absolute in seen:
            continue
        published, has_time = None, True
        node = a
        for _ in range(4):
            node = node.getparent()
            if node is None:
                break
            times = node.xpath(".//time/@datetime")
            if times:
                try:
                    published, has_time = _date(times[0], tz)
                except Exception:  # a date that cannot be read loses the link its date, not the link
                    published, has_time = None, True
                break
        title = " ".join(a.text_content().split()) or None
        seen[absolute] = Entry(absolute, published, has_time, title)
    next_pages: list[str] = []
    for href in tree.xpath('//a[@rel="next"]/@href | //link[@rel="next"]/@href'):
        try:
            next_pages.append(urljoin(url, href))
        except ValueError:  # a broken IPv6 host: no next page there
            continue
    return Parsed("listing", entries=list(seen.values()), next_pages=next_pages)

