"""Article extraction: a pure function from a fetched page to an Article or a Rejection.

``extract_page(html, url, site, ...)`` needs no crawler, so every template can be
tested from a file. It decides first what the page is (an article, or a listing,
search, error or consent page, which are rejected with a reason), then removes the
page furniture that trafilatura alone lets through on these sites (sidebars of other
headlines, tickers, inline teasers, comment forms, share bars), runs trafilatura with
the settings measured in docs/EXTRACTION.md, and cleans ad markers from the text.
Dates, authors and the canonical URL come from the page's own metadata first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, time
from functools import lru_cache
from urllib.parse import parse_qs, urljoin, urlsplit
from zoneinfo import ZoneInfo

import lxml.html
import trafilatura
from cssselect import GenericTranslator
from dateutil import parser as dateparser
from lxml import etree

from steppewatch.encoding import decode_body
from steppewatch.models import Article, Listed, Rejection, RejectReason, article_id, content_hash
from steppewatch.registry import Site
from steppewatch.urls import canonical_url, in_domains

EXTRACTOR = {"name": "trafilatura", "version": trafilatura.__version__, "settings": "precision-v1"}

MIN_TEXT_CHARS = 300
MIN_PARAGRAPHS = 2

# Furniture removed before trafilatura sees the page (see docs/EXTRACTION.md for the
# measurement that made these necessary on top of trafilatura's own pruning).
DEFAULT_DROP = [
    "aside", "nav", "footer", "form", "noscript", "iframe", "script", "style",
    "body > header", "[role=navigation]", "[role=complementary]", "[role=banner]",
    "[class*=related]", "[class*=Related]", "[class*=ticker]", "[class*=currency]",
    "[class*=share]", "[class*=social]", "[class*=newsletter]", "[class*=subscribe]",
    "[class*=comment]", "[id*=comment]", "[class*=breadcrumb]", "[class*=byline]",
    "[class*=advert]", "[class*=promo]", "[class*=latest]", "[class*=popular]",
    "[class*=see-also]", "[class*=read-also]", "[class*=tags]", "[class*=teaser]",
    "[class*=cookie]", "[class*=consent]", "[class*=dateline]", "[class*=date-line]",
]

# Lines that syndication plugins and ad inserters leave in body text.
_MARKER_LINE = re.compile(
    r"^\s*(\[ad_\d+\]|\[/?ad[^\]]*\]|source link|источник ссылки|advertisement|реклама)\s*$",
    re.IGNORECASE,
)
_ERROR_TITLE = re.compile(
    r"\b(404|403|500|502|503|not found|page not found|error|страница не найдена|ошибка|"
    r"бет табылмады)\b",
    re.IGNORECASE,
)
_CONSENT = re.compile(
    r"(we use cookies|cookie (policy|settings|consent)|accept (all )?cookies|consent to|"
    r"мы используем (файлы )?cookie|согласие на обработку|enable javascript)",
    re.IGNORECASE,
)
_SEARCH_PATH = re.compile(r"/(search|poisk|поиск|izlash|qidiruv)(/|$)", re.IGNORECASE)
_LISTING_PATH = re.compile(
    r"/(tag|tags|category|categories|rubric|rubrics|section|topic|topics|author|authors|"
    r"archive|page)(/|$)",
    re.IGNORECASE,
)
_SEARCH_TEXT = re.compile(
    r"(viewing results \d|search results|results? for|результаты поиска|найдено \d)",
    re.IGNORECASE,
)
_KAZAKH = set("әғқңөұүһі")
_KYRGYZ_ONLY = set("ңөү")
_TAJIK = set("ӣҳҷӯ")
_UZBEK_LATIN = re.compile(r"\b\w*(oʻ|gʻ|o‘|g‘|o'|g')\w*", re.IGNORECASE)


def _css_xpath(selectors: Iterable[str]) -> str:
    return " | ".join(_translate(sel) for sel in selectors)


@lru_cache(maxsize=512)
def _translate(selector: str) -> str:
    return GenericTranslator().css_to_xpath(selector, prefix="descendant-or-self::")


def _parse(html: str) -> lxml.html.HtmlElement | None:
    try:
        tree = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return None
    return tree


_META_ATTRS = ("property", "name", "itemprop", "http-equiv")


class _Head:
    """What a page says about itself, read once: its meta tags and JSON-LD items.

    Looking each meta name up with its own XPath cost dozens of tree walks per page.
    """

    def __init__(self, tree: lxml.html.HtmlElement) -> None:
        self.meta: dict[str, dict[str, list[str]]] = {}
        for el in tree.iter("meta"):
            content = el.get("content")
            if content is None:
                continue
            for attr in _META_ATTRS:
                key = el.get(attr)
                if key is not None:
                    self.meta.setdefault(key, {}).setdefault(attr, []).append(content)
        self.json_ld = _json_ld(tree)

    def first(self, *names: str) -> str | None:
        """The first non-empty content of a meta tag named so (by property, name, itemprop, http-equiv)."""
        for name in names:
            by_attr = self.meta.get(name)
            if not by_attr:
                continue
            for attr in _META_ATTRS:
                for value in by_attr.get(attr, ()):
                    if value and value.strip():
                        return value.strip()
        return None


def _meta(tree: lxml.html.HtmlElement | _Head, *names: str) -> str | None:
    head = tree if isinstance(tree, _Head) else _Head(tree)
    return head.first(*names)


def _json_ld(tree: lxml.html.HtmlElement) -> list[dict]:
    found: list[dict] = []
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        try:
            data = json.loads(script)
        except ValueError:
            continue
        stack = data if isinstance(data, list) else [data]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                if "@graph" in item and isinstance(item["@graph"], list):
                    stack.extend(item["@graph"])
                found.append(item)
    return found


def parse_datetime(value: str | None, tz: ZoneInfo) -> tuple[datetime, bool] | None:
    """Parse a date or datetime; naive values are in the site's zone. Returns (dt, has_time)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            d = datetime.fromisoformat(value).date()
            return datetime.combine(d, time(0), tzinfo=tz), False
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            dt = dateparser.parse(value)
        except (ValueError, OverflowError):
            return None
    if dt is None or not (1990 <= dt.year <= 2100):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt, True


def page_date(tree: lxml.html.HtmlElement, tz: ZoneInfo, head: _Head | None = None) -> tuple[datetime, bool] | None:
    """The publication date a page declares about itself, most explicit first."""
    head = head or _Head(tree)
    candidates: list[str | None] = [
        head.first("article:published_time", "datePublished", "pubdate", "publishdate",
                   "date", "dc.date", "DC.date.issued", "og:published_time"),
    ]
    for item in head.json_ld:
        if isinstance(item.get("datePublished"), str):
            candidates.append(item["datePublished"])
    candidates += tree.xpath("(//article//time[@datetime] | //time[@itemprop='datePublished'])/@datetime")[:1]
    candidates += tree.xpath("//time[@datetime]/@datetime")[:1]
    for candidate in candidates:
        parsed = parse_datetime(candidate, tz)
        if parsed:
            return parsed
    return None


def detect_language(text: str) -> str | None:
    """Script-based language guess for the region's languages when a page declares none."""
    sample = text[:5000].lower()
    letters = [c for c in sample if c.isalpha()]
    if not letters:
        return None
    cyr = sum(1 for c in letters if "\u0400" <= c <= "\u04ff")
    if cyr > 0.5 * len(letters):
        chars = set(sample)
        if chars & _TAJIK:
            return "tg"
        if chars & (_KAZAKH - _KYRGYZ_ONLY):
            return "kk"
        if chars & _KYRGYZ_ONLY:
            return "ky"
        if "ў" in chars or "ҳ" in chars:
            return "uz"
        return "ru"
    if len(_UZBEK_LATIN.findall(sample)) >= 3 or re.search(r"\b(va|bilan|uchun|haqida)\b", sample):
        return "uz"
    return "en"


def _declared_language(tree: lxml.html.HtmlElement, head: _Head | None = None) -> str | None:
    lang = (tree.get("lang") or tree.get("xml:lang") or (head or _Head(tree)).first("og:locale", "content-language")
            or "")
    lang = lang.strip().replace("_", "-").split("-")[0].lower()
    return lang if re.fullmatch(r"[a-z]{2,3}", lang) else None


def _heading_links(tree: lxml.html.HtmlElement, url: str) -> set[str]:
    """Distinct other pages linked from headings outside page furniture: teasers."""
    links = set()
    xpath = (
        "//*[self::h1 or self::h2 or self::h3 or self::h4]//a[@href]"
        "[not(ancestor::aside or ancestor::nav or ancestor::footer)]/@href"
    )
    own = urlsplit(url)._replace(fragment="").geturl()
    for href in tree.xpath(xpath):
        target = urljoin(url, href)
        if urlsplit(target)._replace(fragment="").geturl() != own:
            links.add(target)
    return links


def classify(tree: lxml.html.HtmlElement, url: str, status: int, head: _Head | None = None) -> Rejection | None:
    """Reject pages that are not articles; None means 'looks like an article'."""
    title = (tree.findtext(".//title") or "").strip()
    if status >= 400:
        return Rejection(url, RejectReason.ERROR_PAGE, f"HTTP {status}")
    body = tree.find(".//body")
    visible = " ".join(body.itertext()) if body is not None else ""
    if body is None or not visible.strip():
        return Rejection(url, RejectReason.NO_CONTENT, "no body text")
    head = head or _Head(tree)
    og_type = (head.first("og:type") or "").lower()
    is_article_type = og_type == "article" or any(
        str(i.get("@type", "")).endswith("Article") for i in head.json_ld
    )
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if _SEARCH_PATH.search(parts.path) or {"q", "s", "query", "search"} & set(query) or (
        not is_article_type and _SEARCH_TEXT.search(visible[:3000])
    ):
        return Rejection(url, RejectReason.SEARCH, "search results page")
    teasers = _heading_links(tree, url)
    articles = tree.xpath("//article[not(ancestor::aside)]")
    if not is_article_type and (
        len(teasers) >= 3 or len(articles) >= 3 or _LISTING_PATH.search(parts.path)
    ):
        return Rejection(url, RejectReason.LISTING, f"{len(teasers)} teaser links")
    if is_article_type and len(articles) >= 4 and len(teasers) >= 4:
        return Rejection(url, RejectReason.LISTING, f"{len(articles)} article blocks")
    if len(visible) < 2000 and _ERROR_TITLE.search(title):
        return Rejection(url, RejectReason.ERROR_PAGE, f"error title {title[:60]!r}")
    if len(visible) < 1500 and _CONSENT.search(visible[:5000]):
        return Rejection(url, RejectReason.CONSENT_WALL, "consent or JavaScript wall")
    return None


def _clean_text(text: str, title: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not _MARKER_LINE.match(ln)]
    if lines and title and lines[0].casefold() == title.strip().casefold():
        lines = lines[1:]
    return "\n".join(lines)


def _author_names(meta_values: list[str], json_ld: list[dict], fallback: str | None) -> list[str]:
    """Authors from the page's meta tags, then its JSON-LD, else trafilatura's guess."""
    names: list[str] = []
    for value in meta_values:
        names.extend(p.strip() for p in re.split(r"[;,]| and ", value) if p.strip())
    for item in json_ld:
        author = item.get("author")
        for a in author if isinstance(author, list) else [author]:
            if isinstance(a, dict) and a.get("name"):
                names.append(str(a["name"]).strip())
            elif isinstance(a, str):
                names.append(a.strip())
    if not names and fallback:
        names = [p.strip() for p in re.split(r"[;,]", fallback) if p.strip()]
    seen: dict[str, None] = {}
    for name in names:
        if not name.startswith("http"):
            seen.setdefault(name, None)
    return list(seen)


def _tag_list(meta_tags: list[str], keywords: str | None, doc: dict) -> list[str]:
    tags: list[str] = list(meta_tags)
    if keywords:
        tags += keywords.split(",")
    tags += list(doc.get("categories") or []) + list(doc.get("tags") or [])
    out: dict[str, None] = {}
    for tag in tags:
        tag = tag.strip()
        if tag:
            out.setdefault(tag, None)
    return list(out)


_TAG_STEP = re.compile(r"^descendant-or-self::([\w-]+)$")
_EQUALS_STEP = re.compile(r"^descendant-or-self::\*\[@([\w-]+) = '([^'\\]*)'\]$")
_CONTAINS_STEP = re.compile(r"^descendant-or-self::\*\[@([\w-]+) and contains\(@\1, '([^'\\]*)'\)\]$")


class _Furniture:
    """Finds the elements that furniture selectors match, in one pass over the tree.

    Selectors of one element (``aside``, ``[role=banner]``, ``[class*=share]``: nearly
    all of them) are tested in Python against sets and one regex per attribute; libxml2
    evaluating three dozen XPath predicates per element cost more than trafilatura's own
    pruning. Any other selector (``body > header``) is evaluated as XPath.
    """

    def __init__(self, selectors: tuple[str, ...]) -> None:
        self.tags: set[str] = set()
        self.equals: dict[str, set[str]] = {}
        contains: dict[str, list[str]] = {}
        paths = []
        for selector in selectors:
            xpath = _translate(selector)
            if m := _TAG_STEP.match(xpath):
                self.tags.add(m.group(1))
            elif m := _EQUALS_STEP.match(xpath):
                self.equals.setdefault(m.group(1), set()).add(m.group(2))
            elif m := _CONTAINS_STEP.match(xpath):
                contains.setdefault(m.group(1), []).append(m.group(2))
            else:
                paths.append(xpath)
        self.contains = {attr: re.compile("|".join(map(re.escape, parts))) for attr, parts in contains.items()}
        self.xpath = etree.XPath(" | ".join(paths)) if paths else None

    def __call__(self, tree: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
        found = []
        tags, equals, contains = self.tags, self.equals, self.contains.items()
        for el in tree.iter():
            tag = el.tag
            if not isinstance(tag, str):  # comments, processing instructions
                continue
            if tag in tags:
                found.append(el)
                continue
            attrib = el.attrib
            if not attrib:
                continue
            if any(attrib.get(attr) in values for attr, values in equals.items()) or any(
                    (value := attrib.get(attr)) is not None and pattern.search(value) for attr, pattern in contains):
                found.append(el)
        if self.xpath is not None:
            found += self.xpath(tree)
        return found


@lru_cache(maxsize=64)
def _furniture(selectors: tuple[str, ...]) -> _Furniture:
    return _Furniture(selectors)


def _prune(tree: lxml.html.HtmlElement, site: Site) -> lxml.html.HtmlElement:
    """Remove furniture from the tree (in place), narrowed to the site's body selector if any.

    Everything read from the page as a whole (dates, metadata, canonical URL) is read
    before this runs.
    """
    # <header> inside <article> holds the headline and date: keep it; drop page headers.
    # Matches come in document order; removing an ancestor first detaches its matching
    # descendants, whose removal from the detached subtree then changes nothing.
    for el in _furniture((*DEFAULT_DROP, *site.extraction.drop))(tree):
        if el.tag == "header" and el.xpath("ancestor::article"):
            continue
        parent = el.getparent()
        if parent is not None and el.tag not in ("html", "body"):
            parent.remove(el)
    if site.extraction.body:
        nodes = tree.xpath(_translate(site.extraction.body))
        if nodes:
            body = tree.find(".//body")
            if body is not None:
                for child in list(body):
                    body.remove(child)
                for node in nodes:
                    body.append(node)
    return tree


def extract_page(
    html: str | bytes,
    url: str,
    site: Site,
    *,
    status: int = 200,
    content_type: str | None = None,
    listed: Listed | None = None,
    fetched_at: datetime | None = None,
) -> Article | Rejection:
    """Extract one page. Pure: the same input gives the same output (fetched_at aside)."""
    if content_type and not re.search(r"html|xml|text/plain", content_type, re.I):
        return Rejection(url, RejectReason.NOT_HTML, f"content type {content_type}")
    if isinstance(html, bytes):
        if _looks_binary(html):
            return Rejection(url, RejectReason.NOT_HTML, "binary content")
        html, _enc = decode_body(html, content_type)
    elif _looks_binary(html[:2048].encode("utf-8", "replace")):
        return Rejection(url, RejectReason.NOT_HTML, "binary content")
    if not html.strip():
        return Rejection(url, RejectReason.NO_CONTENT, "empty body")
    tree = _parse(html)
    if tree is None:
        return Rejection(url, RejectReason.NO_CONTENT, "unparseable HTML")
    head = _Head(tree)
    rejection = classify(tree, url, status, head)
    if rejection:
        return rejection
    tz = site.tz
    declared_canon = tree.xpath('//link[@rel="canonical"]/@href')[:1] + [head.first("og:url")]
    canon = canonical_url(url, declared_canon, site.allowed_domains)
    # what the whole page declares, read before pruning removes parts of it
    own_title = head.first("og:title") or (tree.xpath("string(//h1)") or "").strip()
    html_title = (tree.findtext(".//title") or "").strip()
    own_date = page_date(tree, tz, head)
    declared_language = _declared_language(tree, head)
    authors_meta = tree.xpath('//meta[@name="author" or @property="article:author"]/@content')
    tags_meta = tree.xpath('//meta[@property="article:tag"]/@content')
    doc = trafilatura.bare_extraction(
        _prune(tree, site),
        url=canon,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        favor_precision=True,
        deduplicate=False,
    )
    data = doc.as_dict() if doc is not None else {}
    title = own_title or data.get("title") or html_title
    title = re.sub(r"\s+", " ", title).strip()[:1000]
    text = _clean_text(data.get("text") or "", title)
    paragraphs = [ln for ln in text.splitlines() if len(ln) > 40]
    if len(text) < MIN_TEXT_CHARS or len(paragraphs) < MIN_PARAGRAPHS:
        return Rejection(url, RejectReason.TOO_SHORT, f"{len(text)} characters of text")

    published: str | None = None
    date_source = "none"
    own = own_date
    if own:
        published, date_source = own[0].isoformat(), "page"
    elif data.get("date"):
        parsed = parse_datetime(data["date"], tz)
        if parsed:
            published, date_source = parsed[0].isoformat(), "page"
    if published is None and listed is not None and listed.published is not None:
        published, date_source = listed.published.isoformat(), listed.source_kind

    language = declared_language or detect_language(text)
    fetched = fetched_at or datetime.now(UTC)
    return Article(
        id=article_id(canon),
        url=url,
        canonical_url=canon,
        site=site.id,
        title=title,
        text=text,
        published=published,
        date_source=date_source,
        language=language,
        authors=_author_names(authors_meta, head.json_ld, data.get("author")),
        description=head.first("description", "og:description") or data.get("description"),
        tags=_tag_list(tags_meta, head.first("keywords", "news_keywords"), data),
        sitename=head.first("og:site_name") or data.get("sitename") or site.name,
        fetched_at=fetched.isoformat(),
        http_status=status,
        content_hash=content_hash(text),
        extractor=dict(EXTRACTOR),
        source={"kind": listed.source_kind, "url": listed.source_url} if listed else {},
    )


_CONTROL_BYTES = bytes([*range(9), *range(14, 32)])


def _looks_binary(data: bytes) -> bool:
    head = data[:4096]
    if not head:
        return False
    if b"\x00" in head:
        return True
    control = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return control > len(head) * 0.05


def discovery_links(html: str | bytes, url: str, site: Site, content_type: str | None = None) -> list[str]:
    """Links on a discovery page (listing, search, tag) that match the site's article patterns."""
    if isinstance(html, bytes):
        html, _ = decode_body(html, content_type)
    tree = _parse(html)
    if tree is None:
        return []
    patterns = [re.compile(lst.article_pattern) for lst in site.listings]
    out: dict[str, None] = {}
    for href in tree.xpath("//a[@href]/@href"):
        target = urljoin(url, href.strip())
        if in_domains(target, site.allowed_domains) and any(p.search(target) for p in patterns):
            out.setdefault(target.split("#")[0], None)
    return list(out)
