"""Boilerplate left in trafilatura's text, found from the page's structure and removed.

Everything here is subtractive: it reads the parsed page to learn which lines of the
extracted text are furniture, and drops those lines from trafilatura's output. It never
changes what trafilatura sees, so it cannot make trafilatura pick another part of the page
as the article, and a page trafilatura extracts cannot come back empty because of it.

The evidence is structural, so it holds on templates nobody here has seen:

- **teaser lines**: a line that is exactly the text of a link to another page of the same
  site (a headline of a "latest news" list or a related-stories rail that trafilatura took
  for part of the body); article paragraphs are prose with links inside, not one link;
- **"read also" paragraphs**: a paragraph that starts with a "Read also:" label (in the
  region's languages and the ones of the real-page set) and is otherwise a lone link;
- **class-named furniture** (share bars, tickers, "latest" lists…): only lines inside such an
  element, and only if that element holds a small part of the extracted text, since the
  same class words name the containers that hold the whole article on some templates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import lxml.html

# Labels that introduce a link to another article inside the body.
READ_ALSO = re.compile(
    r"^(?:read (?:also|more)|also read|see also|related(?: (?:story|article|news))?|more on this|"
    r"читайте (?:также|тоже|ещ[её])|также читайте|читать также|смотрите также|ещ[её] по теме|по теме|"
    r"тағы оқыңыз|тағы да оқыңыз|сондай-ақ оқыңыз|оқи отырыңыз|"
    r"shuningdek,? o['ʻ‘’`]?qing|yana o['ʻ‘’`]?qing|шунингдек,? ўқинг|"
    r"дагы окуңуз|ошондой эле окуңуз|инчунин хонед|"
    r"lesen sie auch|mehr zum thema|auch interessant|lire aussi|à lire aussi|czytaj (?:też|także)|"
    r"lee también|читайте також)\s*[:：.—–-]?\s*",
    re.IGNORECASE,
)

# Class or id words of page furniture. Whole words only: "promotion" is not "promo", a
# "category-…" class is not furniture. Matching is the weakest evidence here, so it is guarded.
_FURNITURE_WORD = re.compile(
    r"(?:^|[^a-z])(related|share|sharing|social|socials|ticker|newsletter|subscribe|subscription|"
    r"breadcrumbs?|promo|teasers?|popular|most-read|mostread|latest|see-also|read-also|also-read|"
    r"recommended|recommendations|advert|advertisement|ads|cookie|cookies|consent|tags|tag-list|"
    r"taglist|comments?|byline|dateline|date-line)(?:$|[^a-z])"
)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
# Blocks whose text trafilatura writes as one line.
_BLOCKS = frozenset({"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "dd", "dt", "blockquote", "td", "th",
                     "div", "section", "article", "figcaption", "pre", "span", "a"})
# A furniture element holding more than this share of the extracted text is not furniture.
MAX_FURNITURE_SHARE = 0.0
# Only short lines (labels, counters, link lists) go: prose in a class-named element stays.
MAX_FURNITURE_LINE = 80
MIN_TEASER_CHARS = 20
# A teaser line may carry a bullet, a time or a date beside the headline: "- 14:02 Headline".
MAX_TEASER_EXTRA = 20
_BULLET = re.compile(r"^[-•*·–—]\s*")


def norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _host(url: str) -> str:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # a malformed link (http://[not-an-ip]/) on the page
        return ""
    return host[4:] if host.startswith("www.") else host


def _own(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return f"{_host(url)}{parts.path.rstrip('/')}?{parts.query}"


@dataclass
class Furniture:
    """What the page's structure says about lines of its extracted text."""

    teasers: set[str] = field(default_factory=set)
    headline_links: int = 0  # links to other pages of the site in headings outside nav/aside/footer
    read_also: set[str] = field(default_factory=set)
    by_element: list[set[str]] = field(default_factory=list)  # lines of each class-named element

    @classmethod
    def read(cls, tree: lxml.html.HtmlElement, url: str, own_urls: Iterable[str]) -> Furniture:
        found = cls()
        host = _host(url)
        own = {_own(u) for u in own_urls if u} | {_own(url)}
        for a in tree.iter("a"):
            href = (a.get("href") or "").strip()
            if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
                continue
            try:
                target = urljoin(url, href)
            except ValueError:
                continue
            if _host(target) != host or _own(target) in own:
                continue
            text = norm(a.text_content())
            if len(text) >= MIN_TEASER_CHARS and " " in text:
                found.teasers.add(text)
            if a.xpath("ancestor::*[self::h1 or self::h2 or self::h3 or self::h4]") and not a.xpath(
                    "ancestor::*[self::nav or self::aside or self::footer or self::header]"):
                found.headline_links += 1
        for el in tree.iter(*_BLOCKS):
            text = norm(el.text_content())
            if not text or len(text) > 600:
                continue
            match = READ_ALSO.match(text)
            if match is None:
                continue
            rest = text[match.end():]
            links = norm(" ".join(a.text_content() for a in el.iter("a")))
            if not rest or (links and len(links) >= 0.6 * len(rest)):
                found.read_also.add(text)
                if rest:
                    found.read_also.add(rest)
        for el in tree.iter():
            if not isinstance(el.tag, str) or el.tag in ("html", "body"):
                continue
            words = " ".join(filter(None, (el.get("class"), el.get("id"))))
            if not words or not _FURNITURE_WORD.search(_CAMEL.sub("-", words).lower()):
                continue
            lines = {norm(b.text_content()) for b in el.iter(*_BLOCKS)} | {norm(el.text_content())}
            lines.discard("")
            found.by_element.append(lines)
        return found

    def is_teaser(self, line: str) -> bool:
        """The (normalised) line is a headline link to another page, give or take a
        bullet, time or date."""
        line = _BULLET.sub("", line)
        if line in self.teasers:
            return True
        return any(len(line) - len(t) <= MAX_TEASER_EXTRA and t in line
                   for t in self.teasers if len(t) <= len(line))

    def clean(self, lines: list[str]) -> tuple[list[str], dict[str, int]]:
        """The lines that are not furniture, and how many of each kind were dropped."""
        normed = [norm(ln) for ln in lines]
        total = sum(len(n) for n in normed) or 1
        present = set(normed)
        furniture: set[str] = set()
        for element in self.by_element:
            inside = {n for n in element & present if len(n) <= MAX_FURNITURE_LINE}
            if inside and sum(len(n) for n in inside) <= MAX_FURNITURE_SHARE * total:
                furniture |= inside
        kept: list[str] = []
        dropped = {"teaser": 0, "teaser_chars": 0, "read_also": 0, "furniture": 0}
        skip_next = False
        for line, n in zip(lines, normed, strict=True):
            if skip_next and n in self.teasers:
                dropped["read_also"] += 1
                skip_next = False
                continue
            skip_next = False
            if n in self.read_also or (READ_ALSO.fullmatch(n) is not None):
                dropped["read_also"] += 1
                skip_next = READ_ALSO.fullmatch(n) is not None  # a label alone: its link is the next line
                continue
            if self.is_teaser(n):
                dropped["teaser"] += 1
                dropped["teaser_chars"] += len(line)
                continue
            if n in furniture:
                dropped["furniture"] += 1
                continue
            kept.append(line)
        return kept, dropped
