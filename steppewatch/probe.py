"""Probe every discovery source of the registry: status, content type, items found.

Used by ``steppewatch sites --check``. A probe is one GET with the crawler's
User-Agent (akipress serves its feed only to a UA with a contact URL), parsed with the
same discovery parsers as the spider, so "200 but HTML where a feed was expected" is
reported as such. Network failures are results ("unreachable: ..."), never crashes.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from spiders.discovery import parse_feed, parse_listing, parse_sitemap
from steppewatch.config import Config
from steppewatch.registry import Listing, Site, Source

MAX_PROBE_BYTES = 20 * 1024 * 1024


def _opener(config: Config) -> urllib.request.OpenerDirector:
    proxies = {"http": config.proxy, "https": config.proxy} if config.proxy else {}
    return urllib.request.build_opener(urllib.request.ProxyHandler(proxies))


def probe_source(site: Site, kind: str, source: Source, config: Config, timeout: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    url = source.urls_for_window(now - timedelta(days=1), now)[-1][0]
    if isinstance(source, Listing):
        url = source.page_urls(url)[0]
    result: dict[str, Any] = {"site": site.id, "kind": kind, "url": url, "status": None,
                              "content_type": None, "items": 0, "result": ""}
    request = urllib.request.Request(url, headers={"User-Agent": site.user_agent or config.user_agent})
    try:
        with _opener(config).open(request, timeout=timeout) as response:
            status, ctype, body = response.status, response.headers.get("Content-Type"), response.read(MAX_PROBE_BYTES)
    except urllib.error.HTTPError as exc:
        result.update(status=exc.code, content_type=exc.headers.get("Content-Type"), result=f"HTTP {exc.code}")
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
