"""Probe every discovery source of the registry: status, content type, items found.

Used by ``steppewatch sites --check``. A probe is one GET with the crawler's
User-Agent (akipress serves its feed only to a UA with a contact URL), parsed with the
same discovery parsers as the spider, so "200 but HTML where a feed was expected" is
reported as such. Network failures are results ("unreachable: ..."), never crashes.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from spiders.discovery import parse_feed, parse_listing, parse_sitemap
from steppewatch.config import Config
from steppewatch.netguard import refusal
from steppewatch.registry import Listing, Site, Source

MAX_PROBE_BYTES = 20 * 1024 * 1024


class Refused(urllib.error.URLError):
    """A URL the network guard does not let the probe fetch (named with the reason)."""


def guarded_address(url: str, allow_private: bool = False) -> str | None:
    """The public address ``url``'s host resolves to (the one to connect to), None when the
    host does not resolve here (a configured proxy resolves it); raises ``Refused`` for any
    scheme but http(s) and for a host that is, or resolves to, a non-public address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused(f"refused {parts.scheme}: URL (only http and https are fetched): {url}")
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    addresses = [info[4][0].split("%")[0] for info in infos]
    for address in addresses:
        why = None if allow_private else refusal(address)
        if why is not None:
            raise Refused(f"refused {url}: {host} is a non-public address ({address}: {why})")
    return addresses[0] if addresses else None


class _GuardedRedirects(urllib.request.HTTPRedirectHandler):
    """Every redirect hop is checked like the first request (scheme and address)."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        guarded_address(newurl, self.allow_private)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address the guard checked, not to whatever the name resolves to next
    (a DNS answer that changes between the check and the connection: rebinding)."""

    def connect(self) -> None:
        pinned = guarded_address(f"http://{self.host}:{self.port}/", allow_private=_ALLOW_PRIVATE.value)
        self.sock = socket.create_connection((pinned or self.host, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        pinned = guarded_address(f"https://{self.host}:{self.port}/", allow_private=_ALLOW_PRIVATE.value)
        sock = socket.create_connection((pinned or self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # the name for SNI and the cert


class _Pinned(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    def http_open(self, req: Any) -> Any:
        return self.do_open(_PinnedHTTPConnection, req)

    def https_open(self, req: Any) -> Any:
        return self.do_open(_PinnedHTTPSConnection, req, context=ssl.create_default_context())


class _Flag:
    value = False


_ALLOW_PRIVATE = _Flag()


def _opener(config: Config) -> urllib.request.OpenerDirector:
    """urllib with the crawl's network guard: only http(s), public addresses only (every
    redirect hop included), the checked address connected to; through the proxy when one is
    configured (the proxy resolves names then), never around it."""
    allow_private = config.scrapy.get("NETGUARD_ALLOW_PRIVATE", False) is True
    _ALLOW_PRIVATE.value = allow_private
    handlers: list[Any] = [_GuardedRedirects(allow_private)]
    if config.proxy:
        handlers.append(urllib.request.ProxyHandler({"http": config.proxy, "https": config.proxy}))
    else:
        handlers += [urllib.request.ProxyHandler({}), _Pinned()]
    opener = urllib.request.build_opener(*handlers)
    # no ftp:, file: or data: handlers at all: a redirect there cannot open a connection
    opener.handlers = [h for h in opener.handlers if not isinstance(
        h, urllib.request.FTPHandler | urllib.request.FileHandler | urllib.request.DataHandler)]
    for scheme in ("ftp", "file", "data"):
        opener.handle_open.pop(scheme, None)
    return opener


def probe_source(site: Site, kind: str, source: Source, config: Config, timeout: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    url = source.urls_for_window(now - timedelta(days=1), now)[-1][0]
    if isinstance(source, Listing):
        url = source.page_urls(url)[0]
    result: dict[str, Any] = {"site": site.id, "kind": kind, "url": url, "status": None,
                              "content_type": None, "items": 0, "result": ""}
    request = urllib.request.Request(url, headers={"User-Agent": site.user_agent or config.user_agent})
    try:
        opener = _opener(config)
        if not config.proxy:
            guarded_address(url, _ALLOW_PRIVATE.value)
        with opener.open(request, timeout=timeout) as response:
            status, ctype, body = response.status, response.headers.get("Content-Type"), response.read(MAX_PROBE_BYTES)
    except urllib.error.HTTPError as exc:
        result.update(status=exc.code, content_type=exc.headers.get("Content-Type"), result=f"HTTP {exc.code}")
        return result
    except Refused as exc:
        result["result"] = str(exc.reason)
        return result
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        result["result"] = f"unreachable: {reason}"
        return result
    result.update(status=status, content_type=ctype)
    if kind == "feed":
        parsed = parse_feed(body, url, site.tz)
    elif kind == "sitemap":
        parsed = parse_sitemap(body, url, site.tz)
    else:
        assert isinstance(source, Listing)
        parsed = parse_listing(body, url, site.tz, source.article_pattern, ctype)
    result["items"] = len(parsed.entries) + len(parsed.children)
    if parsed.error:
        result["result"] = parsed.error
    elif result["items"] == 0:
        result["result"] = f"{parsed.kind}: no items"
    else:
        result["result"] = f"ok ({parsed.kind})"
    return result


def probe_registry(sites: list[Site], config: Config, timeout: float = 10.0, workers: int = 8) -> list[dict[str, Any]]:
    jobs = [(site, kind, src) for site in sites for kind, src in site.sources()]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: probe_source(*job, config, timeout), jobs))
