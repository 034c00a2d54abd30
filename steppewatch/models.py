"""Records that flow through the pipeline: discovered links, articles, rejections.

``Article`` is what is stored (one JSON record per article); ``Rejection`` is the typed
answer of extraction for a page that is not an article, with a reason that is counted.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RejectReason(StrEnum):
    LISTING = "listing"
    SEARCH = "search"
    ERROR_PAGE = "error_page"
    CONSENT_WALL = "consent_wall"
    TOO_SHORT = "too_short"
    NOT_HTML = "not_html"
    NO_CONTENT = "no_content"


@dataclass(frozen=True)
class Rejection:
    url: str
    reason: RejectReason
    detail: str = ""


@dataclass(frozen=True)
class Listed:
    """What a discovery source said about an article link (its date, title, source)."""

    source_kind: str  # feed | sitemap | listing
    source_url: str
    published: datetime | None = None
    title: str | None = None


@dataclass
class Article:
    id: str
    url: str
    canonical_url: str
    site: str
    title: str
    text: str
    published: str | None
    date_source: str
    language: str | None
    authors: list[str] = field(default_factory=list)
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    sitename: str | None = None
    fetched_at: str | None = None
    http_status: int | None = None
    content_hash: str = ""
    extractor: dict[str, str] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    # every publication date the page declares, most explicit first (ISO; a bare day when
    # the page gives no time), for date resolution beyond `published`
    page_dates: list[str] = field(default_factory=list)
    # the page's other language editions (its hreflang alternates on the site's own hosts):
    # canonical URL -> declared language (ISO 639 base code, or "x-default"); the index joins
    # an article's story with an edition's when both declare each other (docs/DEDUP.md)
    editions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def published_dt(self) -> datetime | None:
        return datetime.fromisoformat(self.published) if self.published else None


def normalise_text(text: str) -> str:
    """The form of a text that content hashes and near-duplicate shingles are taken from."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("ё", "е")
    return " ".join(text.split())  # what \s+ -> " " and strip() give, in a third of the time


def content_hash(text: str) -> str:
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def article_id(canonical_url: str) -> str:
    """Stable id: first 16 hex digits of sha256 of the canonical URL."""
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:16]


@dataclass
class ArticleItem:
    """An extracted article a run owns, as the spider yields it: the input of the store pipeline."""

    article: Article
    raw: bytes
    urls: list[str]  # every URL form the page was reached by, for URL dedup
    listed: Listed | None = None  # what the source that listed the page said of it
