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


def _meta(tree: lxml.html.HtmlElement, *names: str) -> str | None:
    for name in names:
        for attr in ("property", "name", "itemprop", "http-equiv"):
            values = tree.xpath(f'//meta[@{attr}="{name}"]/@content')
            for value in values:
                if value and value.strip():
                    return value.strip()
    return None


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


def page_date(tree: lxml.html.HtmlElement, tz: ZoneInfo) -> tuple[datetime, bool] | None:
    """The publication date a page declares about itself, most explicit first."""
    candidates: list[str | None] = [
        _meta(tree, "article:published_time", "datePublished", "pubdate", "publishdate",
              "date", "dc.date", "DC.date.issued", "og:published_time"),
    ]
    for item in _json_ld(tree):
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


def _declared_language(tree: lxml.html.HtmlElement) -> str | None:
    lang = (tree.get("lang") or tree.get("xml:lang") or _meta(tree, "og:locale", "content-language")
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


def classify(tree: lxml.html.HtmlElement, url: str, status: int) -> Rejection | None:
    """Reject pages that are not articles; None means 'looks like an article'."""
    title = (tree.findtext(".//title") or "").strip()
    if status >= 400:
        return Rejection(url, RejectReason.ERROR_PAGE, f"HTTP {status}")
    body = tree.find(".//body")
    if body is None or not " ".join(body.itertext()).strip():
        return Rejection(url, RejectReason.NO_CONTENT, "no body text")
    og_type = (_meta(tree, "og:type") or "").lower()
    is_article_type = og_type == "article" or any(
        str(i.get("@type", "")).endswith("Article") for i in _json_ld(tree)
    )
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    visible = " ".join(body.itertext())
    if _SEARCH_PATH.search(parts.path) or {"q", "s", "query", "search"} & set(query) or (
        _SEARCH_TEXT.search(visible[:3000]) and not is_article_type
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
    if _ERROR_TITLE.search(title) and len(visible) < 2000:
        return Rejection(url, RejectReason.ERROR_PAGE, f"error title {title[:60]!r}")
    if _CONSENT.search(visible[:5000]) and len(visible) < 1500:
        return Rejection(url, RejectReason.CONSENT_WALL, "consent or JavaScript wall")
    return None


def _clean_text(text: str, title: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not _MARKER_LINE.match(ln)]
    if lines and title and lines[0].casefold() == title.strip().casefold():
        lines = lines[1:]
    return "\n".join(lines)


def _authors(tree: lxml.html.HtmlElement, fallback: str | None) -> list[str]:
    names: list[str] = []
    for value in tree.xpath('//meta[@name="author" or @property="article:author"]/@content'):
        names.extend(p.strip() for p in re.split(r"[;,]| and ", value) if p.strip())
    for item in _json_ld(tree):
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


def _tags(tree: lxml.html.HtmlElement, doc: dict) -> list[str]:
    tags: list[str] = []
    tags += tree.xpath('//meta[@property="article:tag"]/@content')
    keywords = _meta(tree, "keywords", "news_keywords")
    if keywords:
        tags += keywords.split(",")
    tags += list(doc.get("categories") or []) + list(doc.get("tags") or [])
    out: dict[str, None] = {}
    for tag in tags:
        tag = tag.strip()
        if tag:
            out.setdefault(tag, None)
    return list(out)


def _prune(tree: lxml.html.HtmlElement, site: Site) -> lxml.html.HtmlElement:
    """A copy of the tree without furniture, narrowed to the site's body selector if any."""
    tree = lxml.html.fromstring(lxml.html.tostring(tree))
    # <header> inside <article> holds the headline and date: keep it; drop page headers.
    for sel in [*DEFAULT_DROP, *site.extraction.drop]:
        for el in tree.xpath(_translate(sel)):
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
    rejection = classify(tree, url, status)
    if rejection:
        return rejection
    tz = site.tz
    declared_canon = tree.xpath('//link[@rel="canonical"]/@href')[:1] + [_meta(tree, "og:url")]
    canon = canonical_url(url, declared_canon, site.allowed_domains)
    pruned = _prune(tree, site)
    doc = trafilatura.bare_extraction(
        pruned,
        url=canon,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        favor_precision=True,
        deduplicate=False,
    )
    data = doc.as_dict() if doc is not None else {}
    title = (
        _meta(tree, "og:title")
        or (tree.xpath("string(//h1)") or "").strip()
        or data.get("title")
        or (tree.findtext(".//title") or "").strip()
    )
    title = re.sub(r"\s+", " ", title).strip()[:1000]
    text = _clean_text(data.get("text") or "", title)
    paragraphs = [ln for ln in text.splitlines() if len(ln) > 40]
    if len(text) < MIN_TEXT_CHARS or len(paragraphs) < MIN_PARAGRAPHS:
        return Rejection(url, RejectReason.TOO_SHORT, f"{len(text)} characters of text")

    published: str | None = None
    date_source = "none"
    own = page_date(tree, tz)
    if own:
        published, date_source = own[0].isoformat(), "page"
    elif data.get("date"):
        parsed = parse_datetime(data["date"], tz)
        if parsed:
            published, date_source = parsed[0].isoformat(), "page"
    if published is None and listed is not None and listed.published is not None:
        published, date_source = listed.published.isoformat(), listed.source_kind

    language = _declared_language(tree) or detect_language(text)
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
        authors=_authors(tree, data.get("author")),
        description=_meta(tree, "description", "og:description") or data.get("description"),
        tags=_tags(tree, data),
        sitename=_meta(tree, "og:site_name") or data.get("sitename") or site.name,
        fetched_at=fetched.isoformat(),
        http_status=status,
        content_hash=content_hash(text),
        extractor=dict(EXTRACTOR),
        source={"kind": listed.source_kind, "url": listed.source_url} if listed else {},
    )


def _looks_binary(data: bytes) -> bool:
    head = data[:4096]
    if not head:
        return False
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 9 or 13 < b < 32)
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
