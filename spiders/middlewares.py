"""Downloader middlewares: polite retries with backoff and Retry-After, a guard against
requests into the crawler's own network, and a fixed proxy.

Scrapy's RetryMiddleware re-queues a failed request at once; sites that answer 429 or
503 ask for a pause (``Retry-After``) and deserve exponential backoff otherwise.
``BackoffRetryMiddleware`` waits before handing the retry back, honouring the header up
to ``RETRY_BACKOFF_MAX``. ``FixedProxyMiddleware`` routes every request, robots.txt
included, through one HTTP proxy (the replay server in tests and the demo).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.logformatter import LogFormatter
from scrapy.utils.response import response_status_message

from steppewatch.ledger import RunLedger
from steppewatch.netguard import refusal


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class BackoffRetryMiddleware(RetryMiddleware):
    """RetryMiddleware that sleeps base * 2**(n-1) (or Retry-After) before each retry."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.base = settings.getfloat("RETRY_BACKOFF_BASE")
        self.max_delay = settings.getfloat("RETRY_BACKOFF_MAX")

    def delay_for(self, request: Request, response: Response | None) -> float | None:
        """None means: the server asks for a longer pause than we wait, give up."""
        attempt = request.meta.get("retry_times", 0) + 1
        delay = self.base * 2 ** (attempt - 1)
        if response is not None:
            asked = retry_after_seconds(response.headers.get("Retry-After"))
            if asked is not None:
                if asked > self.max_delay:
                    return None
                delay = max(asked, 0.0)
        return min(delay, self.max_delay)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        delay = self.delay_for(request, response)
        stats = self.crawler.stats
        if delay is None:
            stats.inc_value("retry/retry_after_too_long")
            return response
        retry = get_retry_request(
            request, reason=response_status_message(response.status), spider=self.crawler.spider,
            max_retry_times=request.meta.get("max_retry_times", self.max_retry_times),
            priority_adjust=request.meta.get("priority_adjust", self.priority_adjust),
        )
        if retry is None:
            return response
        if response.headers.get("Retry-After"):
            stats.inc_value("retry/retry_after_honoured")
        stats.inc_value("retry/backoff_seconds", delay)
        if delay > 0:
            await asyncio.sleep(delay)
        return retry

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry", False):
            return None
        delay = self.delay_for(request, None) or 0.0
        retry = get_retry_request(
            request, reason=exception, spider=self.crawler.spider,
            max_retry_times=request.meta.get("max_retry_times", self.max_retry_times),
            priority_adjust=request.meta.get("priority_adjust", self.priority_adjust),
        )
        if retry is not None and delay > 0:
            await asyncio.sleep(delay)
        return retry


class NetGuardMiddleware:
    """Refuse requests that could reach the crawler's own network instead of a news site.

    Only http(s) is fetched; a host that is, or resolves to, a loopback, private,
    link-local (169.254.169.254, cloud metadata), reserved or multicast address is
    refused, redirects included (they come through here as new requests). Counted in the
    run ledger as refused, by why. ``NETGUARD_ALLOW_PRIVATE`` lifts the address check (tests that
    serve pages on 127.0.0.1 directly). A name that does not resolve here is let
    through: it fails to download or is resolved by the configured proxy. This check
    comes early, with a clear reason and a stat; the answer Twisted then connects to is
    checked again by ``spiders.resolver.GuardedResolver`` (a name that re-points between
    the two, DNS rebinding, is refused there).
    """

    def __init__(self, allow_private: bool = False, dns_timeout: float = 5.0, ledger: RunLedger | None = None) -> None:
        self.allow_private = allow_private
        self.dns_timeout = dns_timeout
        self.ledger = ledger
        self._cache: dict[str, list[ipaddress.IPv4Address | ipaddress.IPv6Address]] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> NetGuardMiddleware:
        return cls(crawler.settings.getbool("NETGUARD_ALLOW_PRIVATE"),
                   crawler.settings.getfloat("NETGUARD_DNS_TIMEOUT"), crawler.get_extension(RunLedger))

    async def process_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            self._refuse("scheme", f"refused {parts.scheme}: URL (only http and https are fetched): {request.url}")
        host = parts.hostname or ""
        if self.allow_private or not host:
            return
        for address in await self._addresses(host):
            why = refusal(address)
            if why is not None:
                self._refuse("private_address",
                             f"refused {request.url}: {host} is a non-public address ({address}: {why})")

    def _refuse(self, why: str, message: str) -> None:
        if self.ledger is not None:
            self.ledger.count_in("refused", why)
        raise IgnoreRequest(message)

    async def _addresses(self, host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        if host in self._cache:
            return self._cache[host]
        try:
            infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, None), self.dns_timeout)
            found = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        except (OSError, TimeoutError, ValueError):
            found = []
        self._cache[host] = found
        return found


class FixedProxyMiddleware:
    """Send every request through ``FIXEDPROXY_URL`` (if set)."""

    def __init__(self, proxy: str | None) -> None:
        self.proxy = proxy

    @classmethod
    def from_crawler(cls, crawler: Any) -> FixedProxyMiddleware:
        return cls(crawler.settings.get("FIXEDPROXY_URL") or None)

    def process_request(self, request: Request) -> None:
        if self.proxy and "proxy" not in request.meta:
            request.meta["proxy"] = self.proxy


class QuietDropLogFormatter(LogFormatter):
    """Log dropped items by their reason alone, at INFO.

    Dropping is routine here (listing pages, out-of-window articles, duplicates) and is
    counted in the stats; Scrapy's default logs each at WARNING with the whole item,
    which for a fetched page is its entire HTML.
    """

    def dropped(self, item: Any, exception: BaseException, response: Any, spider: Any) -> dict[str, Any]:
        return {"level": logging.INFO, "msg": "Dropped: %(exception)s", "args": {"exception": exception}}


# the download errors of a site that cannot be reached: routine for a crawler, said in one line
_NETWORK_ERRORS = ("DownloadConnectionRefusedError", "CannotResolveHostError", "DownloadTimeoutError",
                   "DownloadFailedError", "ResponseDataLossError", "DownloadCancelledError")


def network_error_without_traceback(record: logging.LogRecord) -> bool:
    """A logging filter: a record of a network error keeps its message and loses the traceback.

    Scrapy logs a robots.txt it could not download at ERROR with the whole traceback of a
    connection refused or a name that does not resolve; the message names the URL and the
    error, and the site's source errors count it; it is logged as a WARNING."""
    if record.exc_info and record.exc_info[0] is not None and record.exc_info[0].__name__ in _NETWORK_ERRORS:
        record.exc_info = None
        record.exc_text = None
        if record.levelno > logging.WARNING:  # a site offline is a warning; ERROR is for faults of ours
            record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True
