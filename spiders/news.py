"""The generic news spider: one registry record, one time window, every source.

Discovery requests (feeds, sitemaps, listings, date-addressed templates expanded over
the window) yield article requests for links whose source dates fall in the window
(widened by ``NEWS_DATE_SLACK`` because a feed's date and a page's own date differ
by minutes), what the source said of each in ``cb_kwargs``. An article response is
extracted here (``pipelines/extract.py``, a pure function); a listing or search page
found that way gives its article links as further requests, an article the run's window
owns becomes an ``ArticleItem`` for the store pipeline (``pipelines/items.py``). Everything
counted is recorded in the crawler's ``RunLedger`` (``steppewatch/ledger.py``), per
source and by reason, which feeds the run summary.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy import signals
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from pipelines.extract import discovery_links, extract_page
from spiders.discovery import Entry, Parsed, parse_feed, parse_listing, parse_sitemap
from spiders.resolver import refused_host
from steppewatch.crawl_archive import CrawlArchive
from steppewatch.index import Index
from steppewatch.ledger import RunLedger
from steppewatch.models import Article, ArticleItem, Listed, Rejection, RejectReason
from steppewatch.redaction import redact_text
from steppewatch.registry import Listing, Site, Source
from steppewatch.urls import clean_url, in_domains, is_http_url, strip_amp
from steppewatch.windows import Window, WindowMode


def failure_kind(failure: Failure) -> str:
    """A short, stable name for why a request failed, used as a stats key."""
    exc = failure.value
    if isinstance(exc, HttpError):
        return f"http_{exc.response.status}"
    name = type(exc).__name__
    message = str(exc).lower()
    if name == "IgnoreRequest":
        if "robots" in message:
            return "robots_forbidden"
        if "max redirections" in message:
            return "redirect_loop"
        if "download_maxsize" in message or "max size" in message:
            return "too_large"  # a body that inflates beyond the limit: a gzip bomb
        if message.startswith("refused"):
            return "refused"  # NetGuardMiddleware
    if name in ("CannotResolveHostError", "DNSLookupError"):
        request = getattr(failure, "request", None)
        if request is not None and refused_host(urlsplit(request.url).hostname or ""):
            return "refused"  # spiders/resolver.py: the answer to connect to was not a public address
    if name in ("DownloadCancelledError", "CancelledError"):
        # Scrapy says why only when Content-Length was over DOWNLOAD_MAXSIZE; a body streamed
        # past the limit is cancelled without a message
        return "too_large" if "size" in message else "cancelled"
    if name == "DownloadFailedError":  # Scrapy 2.13+ wraps what went wrong on the connection
        cause = exc.__cause__ or exc.__context__
        inner = type(cause).__name__ if cause is not None else ""
        if "ConnectionLost" in inner or "ConnectionDone" in inner or "reset" in message or "connection" in message:
            return "connection_lost"
        return "download_failed"
    return {
        "DownloadTimeoutError": "timeout",
        "DownloadConnectionRefusedError": "connection_refused",
        "CannotResolveHostError": "dns",
        "ResponseDataLossError": "truncated",
        "UnsupportedURLSchemeError": "refused",
        "TimeoutError": "timeout",
        "TCPTimedOutError": "timeout",
        "DNSLookupError": "dns",
        "ConnectionRefusedError": "connection_refused",
        "ConnectionLost": "connection_lost",
        "ConnectionDone": "connection_lost",
        "ResponseNeverReceived": "connection_lost",
        "ResponseFailed": "truncated",
        "_DataLoss": "truncated",
        "IgnoreRequest": "ignored",
    }.get(name, name.lower())


def parse_shard(value: str) -> tuple[int, int]:
    """``NEWS_SHARD`` "k/n": this process fetches the articles whose URL hashes to k of n."""
    try:
        k, n = (int(x) for x in str(value).split("/"))
    except ValueError:
        raise ValueError(f"NEWS_SHARD must be k/n, got {value!r}") from None
    if not 0 <= k < n:
        raise ValueError(f"NEWS_SHARD {value!r}: k must be in [0, n)")
    return k, n


def shard_of(url: str, shards: int) -> int:
    """A stable shard for an article URL, the same in every process and run."""
    return int.from_bytes(hashlib.blake2b(url.encode("utf-8"), digest_size=8).digest(), "little") % shards


class NewsSpider(scrapy.Spider):
    name = "news"

    def __init__(
        self,
        site: Site,
        since: datetime,
        until: datetime,
        mode: WindowMode = WindowMode.BACKFILL,
        lookback: timedelta = timedelta(hours=48),
        tolerance: timedelta = timedelta(hours=14),
        max_child_sitemaps: int = 50,
        index: Index | None = None,
        reprocess: bool = False,
        shard: tuple[int, int] = (0, 1),
        **kwargs: Any,
    ) -> None:
        super().__init__(name=f"news_{site.id}", **kwargs)
        self.window = Window(since.astimezone(UTC), until.astimezone(UTC), WindowMode(mode), lookback, tolerance)
        self.site = site
        self.since = self.window.since
        self.until = self.window.until
        self.max_child_sitemaps = max_child_sitemaps
        self.allowed_domains = list(site.allowed_domains)
        self.index = index
        self.reprocess = reprocess
        self.shard = shard
        self._queued: set[str] = set()
        self._sitemaps_read: set[str] = set()  # clean URLs of the sitemaps read in this run
        self._ledger: RunLedger | None = None

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> NewsSpider:
        settings = crawler.settings
        kwargs.setdefault("mode", WindowMode(settings.get("NEWS_WINDOW_MODE")))
        kwargs.setdefault("lookback", timedelta(hours=settings.getfloat("NEWS_LOOKBACK_HOURS")))
        kwargs.setdefault("tolerance", timedelta(hours=settings.getfloat("NEWS_DATE_TOLERANCE_HOURS")))
        kwargs.setdefault("max_child_sitemaps", settings.getint("NEWS_MAX_CHILD_SITEMAPS"))
        kwargs.setdefault("reprocess", settings.getbool("NEWS_REPROCESS"))
        kwargs.setdefault("shard", parse_shard(settings.get("NEWS_SHARD")))
        spider = super().from_crawler(crawler, *args, **kwargs)
        if settings.getbool("DEDUP_ENABLED") and spider.index is None:
            # the extensions are made after the spider: take the archive's index once they are
            crawler.signals.connect(spider._take_index, signal=signals.engine_started)
        return spider

    def _take_index(self) -> None:
        extension = self.crawler.get_extension(CrawlArchive)
        self.index = extension.index if extension is not None else None

    # -- the run ledger ------------------------------------------------------------
    @property
    def ledger(self) -> RunLedger:
        """The crawler's ``RunLedger``; outside a crawl (callbacks called by a test), one of its own."""
        if self._ledger is None:
            try:
                self._ledger = self.crawler.get_extension(RunLedger)
            except RuntimeError:  # no extension manager: not crawling
                pass
            if self._ledger is None:
                self._ledger = RunLedger(self.crawler.stats)
        return self._ledger

    # -- discovery ---------------------------------------------------------------
    async def start(self) -> AsyncIterator[Request]:
        for kind, source in self.site.sources():
            for url, first, last in source.urls_for_window(self.since, self.until):
                period = (first, last) if source.date_addressed else None
                template = url
                if isinstance(source, Listing):
                    url = source.page_urls(template)[0]
                self.ledger.source(url, kind)
                yield self._source_request(url, kind, source, page=0, period=period, template=template)

    def _source_request(self, url: str, kind: str, source: Source, page: int,
                        period: tuple[Any, Any] | None, template: str | None = None) -> Request:
        callback = {"feed": self.parse_feed, "sitemap": self.parse_sitemap, "listing": self.parse_listing}[kind]
        return Request(
            url,
            callback=callback,
            errback=self.source_failed,
            priority=10,
            dont_filter=True,
            meta={"sw_kind": kind, "sw_source": source, "sw_page": page, "sw_period": period,
                  "sw_source_url": url, "sw_template": template or url},
        )

    def _record_source(self, response: Response, parsed: Parsed) -> None:
        self.ledger.source_read(
            response.meta["sw_source_url"], response.status,
            response.headers.get("Content-Type", b"").decode("latin-1"), parsed.kind,
            len(parsed.entries) + len(parsed.children), parsed.error,
            "html_not_feed" if parsed.kind == "html" else "invalid")

    def _in_window(self, entry: Entry) -> bool:
        return self.window.reads(entry.published, entry.has_time)

    def _article_requests(self, response: Response, entries: list[Entry]) -> list[Request]:
        meta = response.meta
        return list(self._iter_article_requests(meta["sw_kind"], meta["sw_source_url"], meta.get("sw_period"), entries))

    def _skip_reason(self, url: str) -> str | None:
        """Why the index says not to fetch a URL ('already_stored', 'rejected_recently': not
        an article when last fetched, no re-check due yet), or None to fetch it. If the index
        cannot answer, fetch: storing finds a known article."""
        assert self.index is not None
        try:
            return self.index.skip_reason(url, reprocess=self.reprocess)
        except Exception as exc:  # an index outage must not lose the rest of a sitemap
            self.ledger.count("index_lookup_errors")
            self.logger.warning("index lookup failed, fetching %s: %s", url, type(exc).__name__)
            return None

    def _iter_article_requests(self, kind: str, source_url: str, period: tuple[Any, Any] | None,
                               entries: list[Entry]) -> Iterator[Request]:
        """Requests for the listed articles worth fetching, made as Scrapy takes them.

        Lazily: a sitemap of 10,000 URLs then holds 10,000 small entries rather than
        10,000 requests until the scheduler has queued them all (on disk).

        Every entry not requested is counted as skipped by reason; an entry whose date no
        window can use keeps its URL (counted undated, ``bad_date``); an exception on one
        entry is a counted error of the source, and the rest of the source is still read.
        """
        # Scrapy's UrlLengthMiddleware drops a longer request with no more than an INFO line (0: off)
        max_length = self.crawler.settings.getint("URLLENGTH_LIMIT")
        for entry in entries:
            try:
                if not is_http_url(entry.url):
                    self.ledger.skipped("not_http")
                    continue
                if not in_domains(entry.url, self.allowed_domains):
                    self.ledger.skipped("offsite")
                    continue
                founded = self.site.founded
                if founded and entry.published is not None and entry.published.date() < founded:
                    self.ledger.undated("before_founding")  # a placeholder date: the page will say
                    entry = Entry(entry.url, None, True, entry.title)
                try:  # steppewatch.dates refuses 9999-12-31; a parser that does not may overflow here
                    in_window = self._in_window(entry)
                except (OverflowError, ValueError, TypeError):
                    # 9999-12-31 and the like: the entry loses its date, not its URL
                    self.ledger.undated("bad_date")
                    entry = Entry(entry.url, None, True, entry.title)
                    in_window = True
                if not in_window:
                    self.ledger.skipped("source_date_out_of_window")
                    continue
                try:
                    url = clean_url(strip_amp(entry.url, self.allowed_domains))
                except ValueError:  # a port out of range, a broken IPv6 address: nothing to request
                    self.ledger.skipped("bad_url")
                    continue
                if max_length and len(url) > max_length:
                    self.ledger.skipped("url_too_long")
                    continue
                if url in self._queued:
                    self.ledger.skipped("already_queued")
                    continue
                self._queued.add(url)
                if self.shard[1] > 1 and shard_of(url, self.shard[1]) != self.shard[0]:
                    self.ledger.skipped("other_shard")  # another crawl process of this run fetches it
                    continue
                skip = self._skip_reason(url) if self.index is not None else None
                if skip is not None:
                    self.ledger.skipped(skip)
                    continue
                published = entry.published
                if published is None and period is not None:
                    published = datetime.combine(period[0], datetime.min.time(), tzinfo=self.site.tz)
                listed = Listed(kind, source_url, published, entry.title)
                request = Request(url, callback=self.parse_article, errback=self.article_failed,
                                  cb_kwargs={"listed": listed, "source_url": source_url})
            except Exception:  # one entry must not lose the rest of its source, nor go uncounted
                self.source_read_failed(source_url, Failure())
                continue
            self.ledger.discovered(source_url)
            yield request

    def parse_feed(self, response: Response) -> list[Request]:
        parsed = parse_feed(response.body, response.url, self.site.tz)
        self._record_source(response, parsed)
        return self._article_requests(response, parsed.entries)

    def parse_sitemap(self, response: Response) -> Iterator[Request]:
        """A sitemap's child sitemaps, then its articles.

        Each sitemap is requested once a run (by its ``clean_url``): child requests bypass
        the duplicate filter, so an index that lists itself, or two that list each other,
        would otherwise be fetched for ever. At most ``NEWS_MAX_CHILD_SITEMAPS`` new
        children are read per sitemap; every child left out is counted by reason.
        """
        source_url = response.meta["sw_source_url"]
        try:
            # filled with the registered sitemaps (requested by start()) on the first one read
            read = self._sitemaps_read
            if not read:
                read.update(clean_url(url) for sitemap in self.site.sitemaps
                            for url, _, _ in sitemap.urls_for_window(self.since, self.until))
            read.update((clean_url(source_url), clean_url(response.url)))  # also where a redirect led
            parsed = parse_sitemap(response.body, response.url, self.site.tz)
            self._record_source(response, parsed)
            max_length = self.crawler.settings.getint("URLLENGTH_LIMIT")
            children: list[Request] = []
            over_cap = 0
            for child in parsed.children:
                if not in_domains(child.url, self.allowed_domains):
                    self.ledger.skipped("offsite")
                    continue
                try:
                    if child.published is not None and child.published + timedelta(days=1) < self.window.lo:
                        self.ledger.skipped("child_sitemap_unchanged")
                        continue
                except (OverflowError, ValueError, TypeError):  # 9999-12-31: read it as if undated
                    self.ledger.undated("bad_date")
                try:
                    key = clean_url(child.url)
                except ValueError:  # a port out of range, a broken IPv6 address
                    self.ledger.skipped("bad_url")
                    continue
                if key in read:
                    self.ledger.skipped("sitemap_already_read")
                    continue
                request = self._source_request(child.url, "sitemap", response.meta["sw_source"],
                                               0, response.meta.get("sw_period"))
                if max_length and len(request.url) > max_length:
                    self.ledger.skipped("url_too_long")
                    continue
                if len(children) >= self.max_child_sitemaps:
                    over_cap += 1
                    continue
                read.add(key)
                children.append(request)
            if over_cap:
                self.ledger.skipped("child_sitemaps_over_cap", over_cap)
                self.logger.warning("sitemap %s lists %d child sitemaps to read, over NEWS_MAX_CHILD_SITEMAPS=%d:"
                                    " %d left out", source_url, len(children) + over_cap, self.max_child_sitemaps,
                                    over_cap)
            for request in children:
                self.ledger.source(request.meta["sw_source_url"], "sitemap")
                yield request
            yield from self._iter_article_requests("sitemap", source_url, response.meta.get("sw_period"),
                                                   parsed.entries)
        except Exception:  # counted as the source's error, not lost in Scrapy's log
            self.source_read_failed(source_url, Failure())

    def parse_listing(self, response: Response) -> list[Request]:
        source: Listing = response.meta["sw_source"]
        page = response.meta["sw_page"]
        ctype = response.headers.get("Content-Type", b"").decode("latin-1")
        parsed = parse_listing(response.body, response.url, self.site.tz, source.article_pattern, ctype)
        self._record_source(response, parsed)
        out = self._article_requests(response, parsed.entries)
        dated = [e for e in parsed.entries if e.published is not None]
        all_older = bool(dated) and len(dated) == len(parsed.entries) and all(
            e.published < self.window.lo for e in dated
        )
        if parsed.entries and not all_older and page + 1 < source.pages:
            template = response.meta["sw_template"]
            if "{page}" in template:
                next_url: str | None = source.page_urls(template)[page + 1]
            else:
                next_url = parsed.next_pages[0] if parsed.next_pages else None
            if next_url and in_domains(next_url, self.allowed_domains):
                self.ledger.source(next_url, "listing")
                out.append(self._source_request(next_url, "listing", source, page + 1,
                                                response.meta.get("sw_period"), template))
        return out

    def _follow_discovery_page(self, url: str, links: list[str]) -> Iterator[Request]:
        """Article links found on a page that turned out to be a listing, search or tag page."""
        self.ledger.source(url, "discovered_listing")
        return self._iter_article_requests("listing", url, None, [Entry(u, None) for u in links])

    # -- articles ------------------------------------------------------------------
    def parse_article(self, response: Response, listed: Listed | None = None,
                      source_url: str | None = None) -> Iterator[ArticleItem | Request]:
        """Extract the page (``pipelines/extract.py``, pure); keep it if the run owns it.

        A page extraction rejects is remembered in the index (not fetched again until a
        re-check is due); a listing, search or tag page is not, and the article links on
        it are followed instead. An article is handed to the store pipeline as an
        ``ArticleItem`` only if the run's window owns it.
        """
        self.ledger.fetched(source_url)
        content_type = response.headers.get("Content-Type", b"").decode("latin-1") or None
        fetched_at = datetime.now(UTC)
        # every URL that led here (redirect sources included) is remembered for URL dedup
        urls = [*response.meta.get("redirect_urls", []), response.request.url if response.request else response.url]
        result = extract_page(response.body, response.url, self.site, status=response.status,
                              content_type=content_type, listed=listed, fetched_at=fetched_at)
        if isinstance(result, Rejection):
            self.ledger.rejected(result.reason.value, listed.source_url if listed else None)
            discovery = result.reason in (RejectReason.LISTING, RejectReason.SEARCH)
            self._remember_rejection([response.url, *urls], result.reason.value, discovery)
            self.logger.debug("not an article (%s: %s): %s", result.reason.value, result.detail, response.url)
            if discovery:
                yield from self._follow_discovery_page(
                    response.url, discovery_links(response.body, response.url, self.site, content_type))
            return
        self.ledger.count_in("date_source", result.date_source)
        if result.date_source == getattr(listed, "source_kind", None) and any("T" in d for d in result.page_dates):
            # the page gave a time without an offset, whole hours off its source's explicit one
            self.ledger.count_in("dates", "page_time_overruled")
        if not self._owns(result, listed, fetched_at):
            self.ledger.out_of_window()
            self.logger.debug("published %s, outside the window: %s", result.published, result.url)
            return
        yield ArticleItem(result, response.body, urls, listed)

    def _owns(self, article: Article, listed: Listed | None, fetched_at: datetime) -> bool:
        """Whether the run owns the article (steppewatch/windows.py: a discover run every one
        it fetched, a backfill those dated in its window, by their own or their source's date)."""
        when = article.published_dt
        listed_when = listed.published if listed is not None else None
        fetched = datetime.fromisoformat(article.fetched_at) if article.fetched_at else fetched_at
        if not self.window.owns(when, listed_when, fetched, day_only=article.date_source == "page_day"):
            return False
        if when is None:
            article.date_source = "fetched"  # undated everywhere: found by a run that owns it
        return True

    def _remember_rejection(self, forms: list[str], reason: str, discovery: bool) -> None:
        """Remembered, so the next runs do not fetch it until a re-check is due; a listing or
        search page is not: it is fetched every run for its new links. Failing to remember
        costs a fetch next run, nothing more."""
        if self.index is None:
            return
        try:
            if discovery:
                self.index.forget_rejection(forms)
            else:
                self.index.remember_rejection(forms, self.site.id, reason)
        except Exception as exc:
            self.ledger.count("rejections_not_remembered")
            self.logger.warning("rejection of %s not remembered: %s", forms[0], redact_text(str(exc))[:300])

    def source_failed(self, failure: Failure) -> None:
        """A source that could not be fetched (the errback): its error, by kind, in one line."""
        request = failure.request  # type: ignore[attr-defined]
        url = request.meta["sw_source_url"]
        kind = failure_kind(failure)
        status = failure.value.response.status if isinstance(failure.value, HttpError) else None
        self.ledger.source_failed(url, kind, status=status)
        self.logger.warning("source %s failed: %s", url, kind)

    def source_read_failed(self, url: str, failure: Failure) -> None:
        """An exception while reading a fetched source: counted ``exception_<type>``, the
        source's error, logged with its traceback (a bug of ours, not the site's fault)."""
        kind = f"exception_{type(failure.value).__name__}"
        self.ledger.source_failed(url, kind, f"{kind}: {failure.value}"[:200])
        self.logger.error("source %s: %s while reading it", url, kind, exc_info=failure.value)

    def article_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        kind = failure_kind(failure)
        self.ledger.article_failed(request.cb_kwargs.get("source_url"), kind)
        self.logger.info("article %s failed: %s", request.url, kind)
