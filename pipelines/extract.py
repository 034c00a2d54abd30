"""Article extraction: a pure function from a fetched page to an Article or a Rejection.

``extract_page(html, url, site, ...)`` needs no crawler, so every template can be
tested from a file. It rejects what is plainly not an article (an error, search or
consent page), runs trafilatura on the whole page with the settings measured in
docs/EXTRACTION.md, removes the lines the page's structure shows to be furniture
(pipelines/boilerplate.py: other pages' headlines, "read also" links) and ad markers,
then tells listings from articles by what trafilatura extracted. Dates, authors and the
canonical URL come from the page's own metadata first. The rules are measured on real
pages nobody here wrote (bench/extraction_real.py), not only on the fixture sites.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from copy import deepcopy
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit
from zoneinfo import ZoneInfo

import lxml.html
import trafilatura
from cssselect import GenericTranslator
from lxml import etree

from pipelines.boilerplate import Furniture
from steppewatch.dates import Found, has_explicit_offset, parse_date, whole_hours_apart
from steppewatch.encoding import decode_body
from steppewatch.models import Article, Listed, Rejection, RejectReason, article_id, content_hash
from steppewatch.registry import Site
from steppewatch.urls import canonical_url, clean_url, in_domains, is_http_url, strip_amp

EXTRACTOR = {"name": "trafilatura", "version": trafilatura.__version__, "settings": "precision-v1"}

# trafilatura's options, measured in docs/EXTRACTION.md; bench/extraction_real.py runs
# bare trafilatura with these same options beside the project.
TRAFILATURA_OPTIONS = {
    "with_metadata": True,
    "include_comments": False,
    "include_tables": True,
    "favor_precision": True,
    "deduplicate": False,
}

# A page is too short to be an article below these, unless it declares itself one (og:type,
# JSON-LD, article:published_time): the region's agencies publish one-paragraph items.
MIN_TEXT_CHARS = 200
MIN_DECLARED_TEXT_CHARS = 150
MIN_PARAGRAPH_CHARS = 40
# Text besides other pages' headlines that makes a page an article with a rail, not a listing.
MIN_ARTICLE_BODY = 1000
# Below this, favor_precision is taken to have missed the body and trafilatura runs again
# without it (it cuts whole sections on some templates, where the defaults keep them).
PRECISION_FALLBACK_CHARS = 500

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
# Path segments that make a page of links: taxonomy words followed by one argument
# (/tag/astana/, /page/2/) and section names that end the path (/ru/news/).
_TAXONOMY_SEGMENT = re.compile(
    r"tag|tags|category|categories|rubric|rubrics|rubrika|section|sections|topic|topics|theme|tema|"
    r"author|authors|archive|archives|arhiv|архив|page",
    re.IGNORECASE,
)
_SECTION_SEGMENT = re.compile(r"news|novosti|новости|lenta|zhanalyqtar|yangiliklar|zhanylyktar|latest|all",
                              re.IGNORECASE)
_SEARCH_TEXT = re.compile(
    r"(viewing results \d|search results|results? for|результаты поиска|найдено \d)",
    re.IGNORECASE,
)
# Language detection (docs/EXTRACTION.md, "Language"): py3langid's naive Bayes model, its
# answer restricted to the region's languages and its neighbours' (Turkish, Azerbaijani,
# Persian/Dari, Chinese, Arabic, Mongolian: the region's agencies publish editions in them,
# and without them a Turkish or Persian page would be forced into Turkmen or Tajik).
REGION_LANGUAGES = ("ru", "kk", "ky", "uz", "tg", "tk", "en", "uk", "tr", "az", "fa", "zh", "ar", "mn")
# Below this many letters the detector is wrong on 1 in 5 of the samples (bench/language.py):
# a page's declared language is kept then, as it is when the detector is less sure than this.
MIN_LANGUAGE_LETTERS = 50
MIN_LANGUAGE_CONFIDENCE = 0.8
LANGUAGE_SAMPLE_CHARS = 3000
# Kazakh in the Latin alphabets of 2018 (ń ǵ) and 2021 (ñ ū): letters no other Turkic Latin
# orthography of the region uses (Turkmen writes ň); the model knows no Kazakh Latin and calls
# it Crimean Tatar, Turkmen or Turkish.
_KAZAKH_LATIN = re.compile(r"[ñūńǵ]", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")
_TURKIC_LATIN = frozenset({"crh", "tk", "tr", "az", "uz"})
# Codes sites declare that are country codes or an edition's nickname, not ISO 639-1.
_LANGUAGE_ALIASES = {"kz": "kk", "kg": "ky", "tj": "tg", "ua": "uk", "oz": "uz", "tm": "tk"}


def _css_xpath(selectors: Iterable[str]) -> str:
    return " | ".join(_translate(sel) for sel in selectors)


@lru_cache(maxsize=512)
def _translate(selector: str) -> str:
    return GenericTranslator().css_to_xpath(selector, prefix="descendant-or-self::")


# Comments and processing instructions are dropped at parse time, as trafilatura does when
# it parses a page itself: React writes `<!-- -->` inside paragraphs, and text after a
# comment node is its tail, which trafilatura's text collection loses.
_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, collect_ids=False, default_doctype=False)
_DOCUMENT_START = re.compile(r"<!doctype|<html[\s>]", re.IGNORECASE)
_BEFORE_DOCUMENT = re.compile(r"<(head|body|title|meta)[\s>]", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>", re.IGNORECASE)
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def parse_html(html: str) -> lxml.html.HtmlElement | None:
    """The page's document tree; None if there is none.

    What comes before the doctype or ``<html>`` is dropped: an XML declaration with an
    encoding (lxml refuses it in a decoded string) or a PHP warning printed before the
    template, which would otherwise turn the whole page into a fragment without a head.
    """
    html = _INVALID_XML_CHARS.sub("", html)
    start = _DOCUMENT_START.search(html, 0, 65536)
    if start is not None and start.start() > 0 and not _BEFORE_DOCUMENT.search(html, 0, start.start()):
        html = html[start.start():]
    else:
        html = _XML_DECLARATION.sub("", html, count=1)
    try:
        tree = lxml.html.document_fromstring(html, parser=_PARSER)
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


_PUBLISHED_PROPERTIES = frozenset({"datePublished", "dc:date", "dc:created", "dcterms:created", "dcterms:issued",
                                   "schema:datePublished", "article:published_time"})


def page_dates(tree: lxml.html.HtmlElement, tz: ZoneInfo, head: _Head | None = None,
               now: datetime | None = None, earliest: date | None = None) -> list[Found]:
    """Every publication date the page declares about itself, most explicit first
    (steppewatch.dates reads each: a naive value is in the site's time zone)."""
    head = head or _Head(tree)
    candidates: list[str | None] = [
        head.first("article:published_time", "datePublished", "pubdate", "publishdate",
                   "date", "dc.date", "DC.date.issued", "og:published_time"),
    ]
    for item in head.json_ld:
        if isinstance(item.get("datePublished"), str):
            candidates.append(item["datePublished"])
    # microdata and RDFa on any element (Drupal writes dc:date on a span)
    for el in tree.xpath("//*[not(self::meta)][@itemprop or @property][@content or @datetime]"):
        names = f"{el.get('itemprop') or ''} {el.get('property') or ''}".split()
        if _PUBLISHED_PROPERTIES.intersection(names):
            candidates.append(el.get("content") or el.get("datetime"))
    candidates += tree.xpath("(//article//time[@datetime] | //time[@itemprop='datePublished'])/@datetime")[:1]
    candidates += tree.xpath("//time[@datetime]/@datetime")[:1]
    found: dict[Found, None] = {}
    for candidate in candidates:
        parsed = parse_date(candidate, tz, now, earliest)
        if parsed:
            found.setdefault(parsed, None)
    return list(found)


def resolve_published(own: list[Found], listed: Listed | None, tz: ZoneInfo) -> tuple[str | None, str]:
    """The publication time and where it came from (``date_source``).

    - 'page': the page gives a time, and nothing says it is wrong;
    - 'feed' / 'sitemap' / 'listing' (the source that listed the page): the page gives
      no time; or only the day, and the source's time falls on that day in the site's
      zone; or a naive time that is a whole number of hours (1-14) off a source time
      written with an explicit offset — a local time read in the wrong zone, or UTC
      written without its Z: the value that says its offset is the one to trust;
    - 'page_day': the page gives only the day and no source's time falls on it: the time
      is assumed (midnight in the site's zone);
    - 'none': nothing dates the article.
    """
    source = listed.published if listed is not None else None
    source_kind = listed.source_kind if listed is not None else ""
    timed = [f for f in own if f.has_time]
    if timed:
        page = timed[0]
        if (source is not None and not page.has_offset and has_explicit_offset(source)
                and whole_hours_apart(page.when, source)):
            return source.isoformat(), source_kind
        return page.when.isoformat(), "page"
    if own:
        day = own[0].when.date()
        if source is not None and source.astimezone(tz).date() == day:
            return source.isoformat(), source_kind
        return datetime.combine(day, time(0), tzinfo=tz).isoformat(), "page_day"
    if source is not None:
        return source.isoformat(), source_kind
    return None, "none"


@lru_cache(maxsize=1)
def _language_model() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_scores(text: str) -> tuple[str | None, float, dict[str, float], int]:
    """(the region's most likely language, its share of the region's probability, every
    language's probability, letters read). Restricting naive Bayes to a subset of its classes
    is the same as renormalising the full model's probabilities over the subset, so one pass
    gives both the restricted answer and what a page declaring another language claims."""
    sample = text[:LANGUAGE_SAMPLE_CHARS]
    letters = len(_LETTER.findall(sample))
    if not letters:
        return None, 0.0, {}, 0
    probs = dict(_language_model().rank(sample))
    region = {lang: probs.get(lang, 0.0) for lang in REGION_LANGUAGES}
    total = sum(region.values())
    best = max(region, key=region.__getitem__)
    if best in _TURKIC_LATIN or max(probs, key=probs.__getitem__) == "crh":
        if len(_KAZAKH_LATIN.findall(sample)) >= 2:
            return "kk", 1.0, probs, letters
    return best, (region[best] / total if total else 0.0), probs, letters


def detect_language(text: str) -> str | None:
    """The language of ``text`` among the region's (REGION_LANGUAGES); None without letters."""
    return language_scores(text)[0]


def choose_language(declared: str | None, text: str) -> str | None:
    """The page's declared language when the text agrees or is too short or too mixed to
    tell (fewer than MIN_LANGUAGE_LETTERS letters, confidence under MIN_LANGUAGE_CONFIDENCE);
    the detected one otherwise. A declared language outside the region's list stands when the
    full model finds it at least as likely as the region's best."""
    detected, confidence, probs, letters = language_scores(text)
    if declared is None or detected is None or declared == detected:
        return declared or detected
    if letters < MIN_LANGUAGE_LETTERS or confidence < MIN_LANGUAGE_CONFIDENCE:
        return declared
    if declared not in REGION_LANGUAGES and probs.get(declared, 0.0) >= probs.get(detected, 0.0):
        return declared
    return detected


def _declared_language(tree: lxml.html.HtmlElement, head: _Head | None = None) -> str | None:
    lang = (tree.get("lang") or tree.get("xml:lang") or (head or _Head(tree)).first("og:locale", "content-language")
            or "")
    lang = lang.strip().replace("_", "-").split("-")[0].lower()
    lang = _LANGUAGE_ALIASES.get(lang, lang)
    return lang if re.fullmatch(r"[a-z]{2,3}", lang) else None


# JSON-LD types a page gives itself. An article type is strong evidence for an article;
# a collection or search type for a page of links.
_ARTICLE_TYPES = re.compile(r"(Article|BlogPosting|LiveBlogPosting|Report)$")
_LISTING_TYPES = frozenset({"CollectionPage"})
_SEARCH_TYPES = frozenset({"SearchResultsPage"})
_SEARCH_PARAMS = frozenset({"q", "s", "query", "search", "text", "searchword"})


def _ld_types(head: _Head) -> set[str]:
    """Every @type the page's JSON-LD gives (a type may be a string or a list of them)."""
    types: set[str] = set()
    for item in head.json_ld:
        value = item.get("@type")
        for t in value if isinstance(value, list) else [value]:
            if isinstance(t, str):
                types.add(t.rsplit("/", 1)[-1])
    return types


def declares_article(head: _Head) -> bool:
    """The page's own metadata says it is one article."""
    return ((head.first("og:type") or "").lower() == "article"
            or any(_ARTICLE_TYPES.search(t) for t in _ld_types(head))
            or head.first("article:published_time") is not None)


def _url_shape(url: str) -> str:
    """'search', 'listing' (home, tag, category, archive, page N) or 'page' from the URL alone.

    Only the end of the path counts: /tag/astana/ is a listing, /page/some-article.html and
    /category/news/2024/12/03/title/ are not.
    """
    parts = urlsplit(url)
    segments = [seg for seg in parts.path.split("/") if seg]
    if _SEARCH_PATH.search(parts.path) or _SEARCH_PARAMS & set(parse_qs(parts.query)):
        return "search"
    if not segments or re.fullmatch(r"(index|default|home)\.\w+", segments[-1], re.IGNORECASE):
        return "listing" if not parts.query else "page"
    last = segments[-1]
    if _TAXONOMY_SEGMENT.fullmatch(last) or _SECTION_SEGMENT.fullmatch(last):
        return "listing"
    if (len(segments) >= 2 and _TAXONOMY_SEGMENT.fullmatch(segments[-2]) and "." not in last
            and (last.isdigit() or last.count("-") <= 3)):
        return "listing"
    return "page"


_INVISIBLE = frozenset({"script", "style", "template", "noscript"})
VISIBLE_TEXT_CHARS = 5000


def _visible_text(tree: lxml.html.HtmlElement, limit: int = VISIBLE_TEXT_CHARS) -> str:
    """The start of the body's text, without script, style and template contents: what
    the error, consent and search tests read (they need no more than ``limit`` chars)."""
    body = tree.find(".//body")
    if body is None:
        return ""
    pieces: list[str] = []
    size = 0
    for el in body.iter():
        for piece in (el.text if el.tag not in _INVISIBLE else None, el.tail if el is not body else None):
            if piece and not piece.isspace():
                pieces.append(piece)
                size += len(piece)
        if size >= limit:
            break
    return " ".join(pieces)


def classify(tree: lxml.html.HtmlElement, url: str, status: int, head: _Head | None = None,
             visible: str | None = None) -> Rejection | None:
    """Reject what is plainly not an article before extracting; None means 'extract it'.

    Only strong evidence rejects here: the HTTP status, an empty body; on a page that
    does not declare itself an article, a search URL or search-results type, an error
    title or a consent wall with little text. Listings are told apart after
    extraction, from what trafilatura finds on them (``listing_rejection``).
    """
    if status >= 400:
        return Rejection(url, RejectReason.ERROR_PAGE, f"HTTP {status}")
    visible = _visible_text(tree) if visible is None else visible
    if not visible.strip():
        return Rejection(url, RejectReason.NO_CONTENT, "no body text")
    head = head or _Head(tree)
    if declares_article(head):  # a short news item may have "Ошибка" in its title and a cookie banner
        return None
    if _url_shape(url) == "search" or _SEARCH_TYPES & _ld_types(head):
        return Rejection(url, RejectReason.SEARCH, "search results page")
    title = (tree.findtext(".//title") or "").strip()
    if len(visible) < 2000 and _ERROR_TITLE.search(title):
        return Rejection(url, RejectReason.ERROR_PAGE, f"error title {title[:60]!r}")
    if len(visible) < 1500 and _CONSENT.search(visible):
        return Rejection(url, RejectReason.CONSENT_WALL, "consent or JavaScript wall")
    return None


def listing_rejection(url: str, head: _Head, lines: list[str], teaser_lines: int, teaser_chars: int,
                      headline_links: int, visible: str) -> Rejection | None:
    """A listing, tag, section or search page, told from what trafilatura extracted of it.

    A page is a listing when what trafilatura extracts is mostly headlines of other pages
    of the site and the rest is too little to be an article's body; or when neither its
    metadata nor its text make it an article, its URL or JSON-LD says it is a collection,
    and it holds teasers (headline links to other pages) or little text. An article with
    a related-stories rail or a long comment list is not: its rail is not its text.
    """
    text_chars = sum(len(ln) for ln in lines)
    total = text_chars + teaser_chars
    article = declares_article(head)
    reason = RejectReason.SEARCH if _SEARCH_TEXT.search(visible[:3000]) else RejectReason.LISTING
    if teaser_lines >= 3 and teaser_chars >= (0.8 if article else 0.5) * total and text_chars < MIN_ARTICLE_BODY:
        return Rejection(url, reason, f"{teaser_lines} of the extracted lines are links to other pages")
    if not article and (_url_shape(url) == "listing" or _LISTING_TYPES & _ld_types(head)) and (
            teaser_lines >= 3 or headline_links >= 3 or text_chars < MIN_TEXT_CHARS):
        return Rejection(url, reason, f"listing URL or type, {teaser_lines} headline links in the text")
    return None


def _text_lines(text: str, title: str) -> list[str]:
    """trafilatura's text as lines, without ad-inserter markers and the leading title."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not _MARKER_LINE.match(ln)]
    if lines and title and lines[0].casefold() == title.strip().casefold():
        lines = lines[1:]
    return lines


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


_TABLE_PARTS = ("table", "tbody", "thead", "tfoot", "tr", "td", "th")
_DATA_TABLE_MARKS = ("caption", "thead", "tfoot", "th", "col", "colgroup")
_CELL_BLOCKS = ("p", "div", "table", "ul", "ol", "form", "h1", "h2", "h3", "h4", "blockquote")


def _own_parts(table: lxml.html.HtmlElement, *tags: str) -> list[lxml.html.HtmlElement]:
    """The table's own rows, cells or captions, not those of tables nested in it."""
    return [el for el in table.iter(*tags) if el is not table and next(el.iterancestors("table"), None) is table]


def is_layout_table(table: lxml.html.HtmlElement) -> bool:
    """A table that lays out a page (menus beside the article), not one that holds data.

    Readability's test, simplified: headers, captions and role=table mark data; nested
    tables, role=presentation, blocks inside cells, or few rows and columns mark layout.
    Only the table's own rows and cells count: a layout table often holds a data table.
    """
    role = (table.get("role") or "").lower()
    if role in ("presentation", "none"):
        return True
    if role in ("table", "grid") or _own_parts(table, *_DATA_TABLE_MARKS):
        return False
    if table.find(".//table") is not None:
        return True
    cells = _own_parts(table, "td")
    if any(cell.find(f".//{block}") is not None for cell in cells for block in _CELL_BLOCKS):
        return True
    rows = _own_parts(table, "tr")
    columns = max((sum(1 for c in row if c.tag == "td") for row in rows), default=0)
    return not (len(rows) >= 10 or columns > 4 or len(rows) * columns > 10)


def trafilatura_input(tree: lxml.html.HtmlElement, site: Site) -> lxml.html.HtmlElement:
    """The tree trafilatura sees: a copy, or the tree itself if nothing changes.

    Layout tables become plain containers: trafilatura (with include_tables) writes a
    table-laid page out as one table of menus, polls and the article, where as
    containers its usual boilerplate rules apply. The site's registry hints apply:
    ``extraction.drop`` removes what a site's templates need removed, ``extraction.body``
    keeps only the element that holds the article. Everything read from the page as a
    whole (dates, metadata, canonical URL, furniture evidence) is read from the original.
    """
    hints = site.extraction
    if not hints.drop and not hints.body and not any(map(is_layout_table, tree.iter("table"))):
        return tree
    tree = deepcopy(tree)
    # decided, and their parts found, before any table is rewritten
    parts = [[t, *_own_parts(t, *_TABLE_PARTS)] for t in tree.iter("table") if is_layout_table(t)]
    for el in (el for table in parts for el in table):
        el.tag = "div"
    if hints.drop:
        for el in tree.xpath(_css_xpath(hints.drop)):
            parent = el.getparent()
            if parent is not None and el.tag not in ("html", "body"):
                parent.remove(el)
    if hints.body:
        nodes = tree.xpath(_translate(hints.body))
        body = tree.find(".//body")
        if nodes and body is not None:
            for child in list(body):
                body.remove(child)
            body.extend(nodes)
    return tree


def _trafilatura(tree: lxml.html.HtmlElement, url: str, furniture: Furniture) -> dict:
    """trafilatura's result with the project's options.

    When favor_precision returns almost nothing (it drops whole sections on some
    templates), trafilatura runs again without it; the second result is taken only if it
    extends the first (keeps most of its lines) with paragraphs, not if it found another
    part of the page or only added short lines.
    """
    doc = trafilatura.bare_extraction(tree, url=url, **TRAFILATURA_OPTIONS)
    data = doc.as_dict() if doc is not None else {}
    text = data.get("text") or ""
    if len(text) >= PRECISION_FALLBACK_CHARS:
        return data
    retry = trafilatura.bare_extraction(tree, url=url, **{**TRAFILATURA_OPTIONS, "favor_precision": False})
    retried = retry.as_dict() if retry is not None else {}
    more = retried.get("text") or ""
    if len(more) <= len(text):
        return data
    first = [ln for ln in text.splitlines() if ln.strip()]
    # what the retry adds must be paragraphs, not the tickers and link lists it also lets in
    added, _ = furniture.clean([ln for ln in more.splitlines() if ln.strip() and ln not in text])
    prose = bool(added) and sum(map(len, added)) >= MIN_PARAGRAPH_CHARS * len(added)
    if prose and sum(1 for ln in first if ln in more) >= 0.8 * len(first):
        return retried
    return data


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
    tree = parse_html(html)
    if tree is None:
        return Rejection(url, RejectReason.NO_CONTENT, "unparseable HTML")
    head = _Head(tree)
    visible = _visible_text(tree)
    rejection = classify(tree, url, status, head, visible)
    if rejection:
        return rejection
    tz = site.tz
    declared_canon = tree.xpath('//link[@rel="canonical"]/@href')[:1] + [head.first("og:url")]
    canon = canonical_url(url, declared_canon, site.allowed_domains)
    own_title = head.first("og:title") or (tree.xpath("string(//h1)") or "").strip()
    html_title = (tree.findtext(".//title") or "").strip()
    furniture = Furniture(tree, url, [canon, *declared_canon])
    data = _trafilatura(trafilatura_input(tree, site), canon, furniture)
    title = own_title or data.get("title") or html_title
    title = re.sub(r"\s+", " ", title).strip()[:1000]
    lines, dropped = furniture.clean(_text_lines(data.get("text") or "", title))
    rejection = listing_rejection(url, head, lines, dropped["teaser"], dropped["teaser_chars"],
                                  furniture.headline_links, visible)
    if rejection:
        return rejection
    text = "\n".join(lines)
    fetched = fetched_at or datetime.now(UTC)
    own_dates = page_dates(tree, tz, head, fetched, site.founded)
    # a headline and a date or article metadata of the page's own: a short news item, not a
    # stub (trafilatura's date below is a guess from anywhere on the page, so it does not count)
    declared = bool(own_title or data.get("title")) and (declares_article(head) or bool(own_dates))
    if len(text) < (MIN_DECLARED_TEXT_CHARS if declared else MIN_TEXT_CHARS) or (
            len(text) < 1000 and not any(len(ln) >= MIN_PARAGRAPH_CHARS for ln in lines)):
        return Rejection(url, RejectReason.TOO_SHORT, f"{len(text)} characters of text")
    if not own_dates and data.get("date"):
        own_dates = [d for d in [parse_date(data["date"], tz, fetched, site.founded)] if d]
    published, date_source = resolve_published(own_dates, listed, tz)
    language = choose_language(_declared_language(tree, head), text)
    authors_meta = tree.xpath('//meta[@name="author" or @property="article:author"]/@content')
    tags_meta = tree.xpath('//meta[@property="article:tag"]/@content')
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
        page_dates=[d.iso() for d in own_dates],
        editions=language_editions(tree, url, site, canon),
    )


# More alternates than this on one page is a sitemap-like footer, not one article's editions.
MAX_EDITIONS = 32
_HREFLANG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*")
_LANGUAGE_ROOT = re.compile(r"[a-z]{2,3}([-_][a-z]{2,4})?", re.IGNORECASE)


def edition_language(hreflang: str) -> str | None:
    """The base language of an ``hreflang`` value (``ru-KZ`` -> ``ru``, ``kz`` -> ``kk``), or
    ``x-default``; None for a value that is not a language tag."""
    value = hreflang.strip().lower().replace("_", "-")
    if value == "x-default":
        return value
    if not _HREFLANG.fullmatch(value):
        return None
    base = value.split("-")[0]
    return _LANGUAGE_ALIASES.get(base, base)


def is_language_root(url: str) -> bool:
    """The site's home page or a bare language root (``/``, ``/en/``, ``/ru``, ``/kz/index.php``,
    ``/?lang=en``): where broken templates point every page's alternates."""
    segments = [seg for seg in urlsplit(url).path.split("/") if seg]
    if segments and re.fullmatch(r"(index|default|home|main)(\.\w+)?", segments[-1], re.IGNORECASE):
        segments = segments[:-1]
    return not segments or (len(segments) == 1 and bool(_LANGUAGE_ROOT.fullmatch(segments[0])))


def language_editions(tree: lxml.html.HtmlElement, url: str, site: Site, canon: str) -> dict[str, str]:
    """The page's other language editions: ``<link rel=alternate hreflang>`` targets (canonical
    URL -> base language), on hosts the site owns, not the page itself, not a home page,
    language root, listing or search page (templates that point every page there are common).

    A URL declared under a language and under ``x-default`` keeps the language.
    """
    own = {canon, clean_url(strip_amp(url, site.allowed_domains))}
    found: dict[str, str] = {}
    for link in tree.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        hreflang, href = link.get("hreflang"), link.get("href")
        if "alternate" not in rel or not hreflang or not href:
            continue
        language = edition_language(hreflang)
        if language is None:
            continue
        try:
            absolute = urljoin(url, href.strip())
            if not is_http_url(absolute):
                continue
            edition = clean_url(strip_amp(absolute, site.allowed_domains))
        except ValueError:  # a malformed href (bad port, stray brackets): not an edition
            continue
        # the site's hosts as owns_host reads them, IDN spellings compared as IDNA
        if (edition in own or not in_domains(edition, site.allowed_domains)
                or is_language_root(edition) or _url_shape(edition) != "page"):
            continue
        if found.get(edition) in (None, "x-default"):
            found[edition] = language
    return {} if len(found) > MAX_EDITIONS else dict(sorted(found.items()))


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
    tree = parse_html(html)
    if tree is None:
        return []
    patterns = [re.compile(lst.article_pattern) for lst in site.listings]
    out: dict[str, None] = {}
    for href in tree.xpath("//a[@href]/@href"):
        target = urljoin(url, href.strip())
        if in_domains(target, site.allowed_domains) and any(p.search(target) for p in patterns):
            out.setdefault(target.split("#")[0], None)
    return list(out)
