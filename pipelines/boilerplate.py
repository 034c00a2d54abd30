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
- **reader comments**: a line that is only a comments heading ("Комментарии (3)", "3
  comments", "Izohlar (2)") when the page has it as an element of its own, and every line
  after it: trafilatura sometimes keeps a comments section after the body, and readers
  name people and places the article does not (an alert would fire on them);

Class names are not evidence here: the words that name furniture (``latest``, ``share``,
``teaser``, ``comment``, ``promo``…) also name the containers that hold the whole article on
some templates. Removing lines from class-named elements, even guarded by their share of
the text, cost more recall than it gained precision on the real-page set
(bench/extraction_real.py), so it is not done.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from steppewatch.urls import clean_url

# Labels that introduce a link to another article inside the body.
_LABELS = (
    r"(?:read (?:also|more)|also read|see also|related(?: (?:story|article|news))?|more on this|"
    r"читайте (?:также|тоже|ещ[её])|также читайте|читать также|смотрите также|ещ[её] по теме|по теме|"
    r"тағы оқыңыз|тағы да оқыңыз|сондай-ақ оқыңыз|оқи отырыңыз|"
    r"shuningdek,? o['ʻ‘’`]?qing|yana o['ʻ‘’`]?qing|шунингдек,? ўқинг|"
    r"дагы окуңуз|ошондой эле окуңуз|инчунин хонед|"
    r"lesen sie auch|mehr zum thema|auch interessant|lire aussi|à lire aussi|czytaj (?:też|także)|"
    r"lee también|читайте також)"
)
READ_ALSO = re.compile(r"^" + _LABELS + r"\s*[:：.—–-]?\s*", re.IGNORECASE)
_ANY_LABEL = re.compile(_LABELS, re.IGNORECASE)

# The heading of a reader-comments section, alone on its line, with or without a count:
# "Комментарии (3)", "3 comments", "Izohlar (2)", "Пікірлер". Only the plural, as a whole
# line: "Комментарий эксперта" or "Комментарии экспертов" are an article's own subheadings.
COMMENTS_HEADING = re.compile(
    r"^(?:\(?\d+\)?\s*)?(?:comments|reader comments|комментарии|комментарии читателей|отзывы|"
    r"пікірлер|комментарийлер|izohlar|изоҳлар|фикрлар|fikrlar|коментарі)(?:\s*[(\[]?\s*\d+\s*[)\]]?)?\s*:?$",
    re.IGNORECASE)

# Blocks that may hold a "read also" paragraph (trafilatura writes each as one line).
_LABELLED_BLOCKS = ("p", "div", "li", "h2", "h3", "h4", "h5", "h6", "dd", "blockquote", "td", "section")
MIN_TEASER_CHARS = 20
# A teaser line may carry a bullet, a time or a date beside the headline: "- 14:02 Headline".
MAX_TEASER_EXTRA = 20
_BULLET = re.compile(r"^[-•*·–—]\s*")


def norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _text_start(el: lxml.html.HtmlElement, size: int = 40) -> str:
    """The first characters of an element's text, normalised, without reading all of it."""
    start = ""
    for piece in el.itertext():
        start += piece
        if len(start) >= size:
            break
    return norm(start)


def _host(url: str) -> str:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # a malformed link (http://[not-an-ip]/) on the page
        return ""
    return host[4:] if host.startswith("www.") else host


def _own(url: str) -> str:
    """The page a URL names, whatever its tracking parameters, www. or trailing slash."""
    try:
        parts = urlsplit(clean_url(url))
    except ValueError:
        return url
    return f"{_host(url)}{parts.path.rstrip('/')}?{parts.query}"


_HEADLINE_LINKS = etree.XPath(
    "//*[self::h1 or self::h2 or self::h3 or self::h4]//a[@href]"
    "[not(ancestor::nav or ancestor::aside or ancestor::footer or ancestor::header)]")


class Furniture:
    """What the page's structure says about lines of its extracted text."""

    def __init__(self, tree: lxml.html.HtmlElement, url: str, own_urls: Iterable[str]) -> None:
        """Read the page's links once; "read also" blocks are looked for only when the
        text to clean has a label (most pages have none)."""
        self.teasers: set[str] = set()
        self.teasers_by_length: dict[int, list[str]] = {}
        self.headline_links = 0  # links to other pages of the site in headings outside nav/aside/footer
        self._tree = tree
        self._read_also: set[str] | None = None
        host = _host(url)
        own = {_own(u) for u in own_urls if u} | {_own(url)}
        in_headings = set(_HEADLINE_LINKS(tree))
        for a in tree.iter("a"):
            href = (a.get("href") or "").strip()
            if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
                continue
            text = norm(a.text_content())
            teaser = len(text) >= MIN_TEASER_CHARS and " " in text and text not in self.teasers
            headline = a in in_headings
            if not teaser and not headline:
                continue
            try:
                target = urljoin(url, href)
            except ValueError:
                continue
            if _host(target) != host or _own(target) in own:
                continue
            if teaser:
                self.teasers.add(text)
                self.teasers_by_length.setdefault(len(text), []).append(text)
            self.headline_links += headline

    @property
    def read_also(self) -> set[str]:
        """Normalised texts of "read also" paragraphs (and of their links) on the page."""
        if self._read_also is None:
            self._read_also = set()
            for el in self._tree.iter(*_LABELLED_BLOCKS):
                if READ_ALSO.match(_text_start(el)) is None:
                    continue
                text = norm(el.text_content())
                match = READ_ALSO.match(text)
                if match is None or len(text) > 600:
                    continue
                rest = text[match.end():]
                links = norm(" ".join(a.text_content() for a in el.iter("a")))
                if not rest or (links and len(links) >= 0.6 * len(rest)):
                    self._read_also.add(text)
                    if rest:
                        self._read_also.add(rest)
        return self._read_also

    def has_heading(self, line: str) -> bool:
        """Whether an element of the page has exactly this (normalised) text: a heading of its
        own, not words that trafilatura joined from inside a paragraph."""
        return any(norm(el.text_content()) == line
                   for el in self._tree.iter("h2", "h3", "h4", "h5", "h6", "div", "span", "p", "strong", "b")
                   if len(el) <= 2)

    def is_teaser(self, line: str) -> bool:
        """The (normalised) line is a headline link to another page, give or take a
        bullet, time or date."""
        line = _BULLET.sub("", line)
        if line in self.teasers:
            return True
        return any(t in line for size in range(max(len(line) - MAX_TEASER_EXTRA, MIN_TEASER_CHARS), len(line))
                   for t in self.teasers_by_length.get(size, ()))

    def clean(self, lines: list[str]) -> tuple[list[str], dict[str, int]]:
        """The lines that are not furniture, and how many of each kind were dropped."""
        normed = [norm(ln) for ln in lines]
        read_also = self.read_also if any(_ANY_LABEL.search(n) for n in normed) else set()
        kept: list[str] = []
        dropped = {"teaser": 0, "teaser_chars": 0, "read_also": 0, "comments": 0}
        skip_next = False
        for i, (line, n) in enumerate(zip(lines, normed, strict=True)):
            if i and COMMENTS_HEADING.match(n) and self.has_heading(n):
                dropped["comments"] += len(lines) - i
                break
            if skip_next and n in self.teasers:
                dropped["read_also"] += 1
                skip_next = False
                continue
            skip_next = False
            if n in read_also or (READ_ALSO.fullmatch(n) is not None):
                dropped["read_also"] += 1
                skip_next = READ_ALSO.fullmatch(n) is not None  # a label alone: its link is the next line
                continue
            if self.is_teaser(n):
                dropped["teaser"] += 1
                dropped["teaser_chars"] += len(line)
                continue
            kept.append(line)
        return kept, dropped
