"""The site registry: which sites to crawl and how to discover their articles.

The registry is data (``config/sites.yaml``), loaded into typed, validated pydantic
models so that a typo or a bad regex fails before any crawl starts, with an error
naming the file, the site and the field. Discovery sources may be URL templates:
``{page}`` for pagination and date tokens (``{YYYY}``, ``{MM}``, ``{DD}``, ``{M}``,
``{D}``, ``{YYYYMMDD}``, ``{YYYY-MM-DD}`` and ``END_`` variants for the last day of
the period) for date-addressed sitemaps and archives, which make backfills possible.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_SITES_PATH = Path("config/sites.yaml")

Period = Literal["day", "week", "month"]

_DATE_TOKENS = ("YYYYMMDD", "YYYY-MM-DD", "YYYY", "MM", "DD", "M", "D")
_TOKEN_RE = re.compile(r"\{([A-Za-z_-]+)\}")
_ALLOWED_TOKENS = {"page", *_DATE_TOKENS, *(f"END_{t}" for t in _DATE_TOKENS)}
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
# the index's site columns are VARCHAR(64) (PostgreSQL refuses longer values; SQLite would
# take them): an id that fits every backend, key and DAG id ("steppewatch_" + id < 250)
MAX_SITE_ID_CHARS = 64
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z0-9-]{2,63}$")


class RegistryError(ValueError):
    """A registry file that cannot be used; the message names file, site and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_url_template(value: str) -> str:
    unknown = sorted(set(_TOKEN_RE.findall(value)) - _ALLOWED_TOKENS)
    if unknown:
        raise ValueError(f"unknown placeholder(s) {unknown} in {value!r}")
    parts = urlsplit(_TOKEN_RE.sub("0", value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {value!r}")
    return value


def _tokens(template: str) -> set[str]:
    return set(_TOKEN_RE.findall(template))


class Source(_Strict):
    """One discovery URL (possibly a template)."""

    url: str
    verified: bool = False
    period: Period | None = None
    note: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url_template(value)

    @property
    def date_addressed(self) -> bool:
        return any(t.removeprefix("END_") in _DATE_TOKENS for t in _tokens(self.url))

    def urls_for_window(self, since: datetime, until: datetime) -> list[tuple[str, date, date]]:
        """Concrete URLs with the (first, last) day each covers; one URL if not dated."""
        if not self.date_addressed:
            return [(self.url, since.date(), (until - timedelta(microseconds=1)).date())]
        return [
            (fill_dates(self.url, start, end), start, end)
            for start, end in periods(since, until, self.period or "day")
        ]


class Feed(Source):
    """An RSS 2.0, RSS 1.0 (RDF) or Atom feed."""


class Sitemap(Source):
    """A sitemap, sitemap index or Google News sitemap (gzipped or not)."""


class Listing(Source):
    """A section, latest-news or archive page whose links lead to articles."""

    article_pattern: str
    pages: Annotated[int, Field(ge=1, le=200)] = 1
    first_page: int = 1

    @field_validator("article_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex {value!r}: {exc}") from exc
        return value

    def page_urls(self, url: str) -> list[str]:
        if "{page}" not in url:
            return [url]
        return [url.replace("{page}", str(n)) for n in range(self.first_page, self.first_page + self.pages)]


class ExtractionHints(_Strict):
    """CSS selectors that steer extraction for one site's templates."""

    drop: list[str] = Field(default_factory=list)
    body: str | None = None

    @field_validator("drop", "body")
    @classmethod
    def _css(cls, value: list[str] | str | None) -> list[str] | str | None:
        from cssselect import GenericTranslator, SelectorError

        for sel in [value] if isinstance(value, str) else value or []:
            try:
                GenericTranslator().css_to_xpath(sel)
            except SelectorError as exc:
                raise ValueError(f"invalid CSS selector {sel!r}: {exc}") from exc
        return value


class Site(_Strict):
    """One news site (or one edition of it) and its discovery sources."""

    id: str
    name: str
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    languages: Annotated[list[str], Field(min_length=1)]
    allowed_domains: Annotated[list[str], Field(min_length=1)]
    timezone: str = "UTC"
    # the day the site began publishing: an earlier date on its pages or in its feeds is a
    # placeholder or an error, not a publication date (steppewatch/dates.py's sanity range)
    founded: date | None = None
    schedule: str | None = None
    verified: bool = False
    enabled: bool = True
    feeds: list[Feed] = Field(default_factory=list)
    sitemaps: list[Sitemap] = Field(default_factory=list)
    listings: list[Listing] = Field(default_factory=list)
    extraction: ExtractionHints = Field(default_factory=ExtractionHints)
    user_agent: str | None = None
    notes: str | None = None

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG_RE.match(value):
            raise ValueError(f"id must be a lowercase slug ([a-z0-9_]), got {value!r}")
        if len(value) > MAX_SITE_ID_CHARS:
            raise ValueError(f"id must be at most {MAX_SITE_ID_CHARS} characters (it names index columns, "
                             f"store keys and Airflow DAG ids), got {len(value)}: {value!r}")
        return value

    @field_validator("languages")
    @classmethod
    def _langs(cls, value: list[str]) -> list[str]:
        for lang in value:
            if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z]{2,4})?", lang):
                raise ValueError(f"not a language code: {lang!r}")
        return value

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        for dom in value:
            try:
                ascii_dom = dom.encode("idna").decode("ascii").lower()
            except UnicodeError:
                ascii_dom = ""
            if not _DOMAIN_RE.match(ascii_dom):
                raise ValueError(f"not a domain name: {dom!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("@") or len(value.split()) == 5):
            raise ValueError(f"not a cron expression: {value!r}")
        return value

    @model_validator(mode="after")
    def _sources(self) -> Site:
        if not (self.feeds or self.sitemaps or self.listings):
            raise ValueError("no discovery sources: give at least one of feeds, sitemaps, listings")
        for kind in ("feeds", "sitemaps", "listings"):
            for src in getattr(self, kind):
                host = urlsplit(_TOKEN_RE.sub("0", src.url)).hostname or ""
                if not self.owns_host(host):
                    raise ValueError(f"{kind} URL {src.url!r} is outside allowed_domains")
        return self

    def owns_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == d or host.endswith("." + d) for d in self.allowed_domains)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def sources(self) -> Iterator[tuple[str, Source]]:
        for kind in ("feeds", "sitemaps", "listings"):
            for src in getattr(self, kind):
                yield kind.rstrip("s"), src


def scripts_of(text: str) -> set[str]:
    """The scripts of a text's letters (LATIN, CYRILLIC, GREEK …), by their Unicode names."""
    return {unicodedata.name(ch, "UNKNOWN ?").split()[0] for ch in text if ch.isalpha()}


# Cyrillic and Greek letters drawn like Latin ones, as they stand in for them in look-alike ids
_LOOKALIKES = str.maketrans("аеорсухіјѕԁԛԝАВЕКМНОРСТХІЈЅΑΒΕΖΗΙΚΜΝΟΡΤΥΧοντ",
                            "aeopcyxijsdqwABEKMHOPCTXIJSABEZHIKMNOPTYXovt")


def _as_latin(text: str) -> str:
    return text.translate(_LOOKALIKES)


class Registry(_Strict):
    sites: list[Site]
    path: str = "<memory>"

    def get(self, site_id: str) -> Site:
        for site in self.sites:
            if site.id == site_id:
                return site
        raise RegistryError(f"{self.path}: {self.unknown(site_id)}")

    def unknown(self, site_id: str) -> str:
        """Why ``site_id`` names no site here, with the ids it may have meant. An id that mixes
        scripts (``kаzinfo`` with a Cyrillic а) reads like a real one and is said to."""
        import difflib

        known = sorted(s.id for s in self.sites)
        scripts = scripts_of(site_id)
        why = f" (it mixes scripts: {', '.join(sorted(scripts))})" if len(scripts) > 1 else ""
        reads_as = _as_latin(site_id)  # each letter by the Latin one it is drawn like
        close = [reads_as] if reads_as in known else difflib.get_close_matches(reads_as, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f" (known: {', '.join(known)})"
        return f"no site with id {site_id!r}{why}{hint}"

    def enabled(self) -> list[Site]:
        return [s for s in self.sites if s.enabled]


def adhoc_site(url: str) -> Site:
    """A registry record for one page outside the registry (``steppewatch extract``)."""
    host = (urlsplit(url).hostname or "").lower()
    if not _DOMAIN_RE.match(host):
        host = "localhost.localdomain"
    return Site(id="adhoc", name=host, country="XX", languages=["und"], allowed_domains=[host],
                listings=[Listing(url=f"http://{host}/", article_pattern=".")])


def project_default(relative: Path) -> Path:
    """A default config path: in the working directory, else the project's own copy (a
    checkout's, else the one installed with the package, under steppewatch/data/)."""
    if relative.exists():
        return relative
    package = Path(__file__).resolve().parent
    for bundled in (package.parent / relative, package / "data" / relative):
        if bundled.exists():
            return bundled
    return relative


def sites_path() -> Path:
    """The bundled registry; the configured one (``STEPPEWATCH_SITES``) is ``Config.sites``."""
    return project_default(DEFAULT_SITES_PATH)


def load_registry(path: str | Path | None = None) -> Registry:
    """Load and validate a registry file; raise RegistryError naming file, site, field."""
    path = Path(path) if path else sites_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RegistryError(f"{path}: registry file not found") from exc
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("sites"), list):
        raise RegistryError(f"{path}: expected a mapping with a 'sites' list")
    unknown = set(raw) - {"sites"}
    if unknown:
        raise RegistryError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    sites: list[Site] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw["sites"]):
        label = entry.get("id", f"#{index}") if isinstance(entry, dict) else f"#{index}"
        try:
            site = Site.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"field {'.'.join(str(p) for p in err['loc']) or '(site)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise RegistryError(f"{path}: site {label!r}: {problems}") from None
        if site.id in seen:
            raise RegistryError(
                f"{path}: site {site.id!r}: field id: duplicate id (also site #{seen[site.id]})"
            )
        seen[site.id] = index
        sites.append(site)
    return Registry(sites=sites, path=str(path))


def periods(since: datetime, until: datetime, period: Period) -> list[tuple[date, date]]:
    """The calendar periods (first day, last day) that overlap [since, until)."""
    first = since.date()
    last = (until - timedelta(microseconds=1)).date()
    out: list[tuple[date, date]] = []
    day = first
    while day <= last:
        if period == "day":
            start, end = day, day
        elif period == "week":
            start = day - timedelta(days=day.weekday())
            end = start + timedelta(days=6)
        else:
            start = day.replace(day=1)
            end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        out.append((start, end))
        day = end + timedelta(days=1)
    return out


def fill_dates(template: str, start: date, end: date) -> str:
    def fmt(token: str, d: date) -> str:
        return {
            "YYYYMMDD": d.strftime("%Y%m%d"),
            "YYYY-MM-DD": d.isoformat(),
            "YYYY": f"{d.year:04d}",
            "MM": f"{d.month:02d}",
            "DD": f"{d.day:02d}",
            "M": str(d.month),
            "D": str(d.day),
        }[token]

    def repl(match: re.Match[str]) -> str:
        token = match.group(1)
        if token == "page":
            return match.group(0)
        if token.startswith("END_"):
            return fmt(token[4:], end)
        return fmt(token, start)

    return _TOKEN_RE.sub(repl, template)
