"""The crawl's DNS resolver: a name is connected to only through an answer that was checked.

``NetGuardMiddleware`` refuses a request whose host is, or resolves to, a non-public
address, but it asks the resolver before the download and Twisted asks again when it
connects: a name whose answer changes in between (DNS rebinding, a short TTL) passed the
check and was connected to wherever the second answer pointed. Twisted connects to the
address this resolver hands it, so the check made here is on the address connected to.

Installed as ``TWISTED_DNS_RESOLVER``; built by Scrapy from the crawl's settings
(``NETGUARD_ALLOW_PRIVATE`` lifts the check as it lifts the middleware's; the configured
proxy's host is the operator's own and is always resolved). Through a proxy, the proxy
resolves the sites' names: pinning them is then the proxy's job, and the middleware still
refuses addresses written in URLs and names that resolve here to non-public addresses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from scrapy.resolver import CachingThreadedResolver
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError

from steppewatch.netguard import refusal
from steppewatch.redaction import quoted

logger = logging.getLogger(__name__)


class RefusedAddress(DNSLookupError):
    """A name resolved to an address the crawl may not connect to."""


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, refusing answers that are not public unicast addresses."""

    def __init__(self, reactor: Any, cache_size: int, timeout: float, allow_private: bool = False,
                 trusted_hosts: Iterable[str] = ()) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.allow_private = allow_private
        self.trusted_hosts = frozenset(h.lower() for h in trusted_hosts)
        # Twisted turns a failed lookup into "no results for hostname lookup": the reason is
        # kept here, by name, for the spider to count the failure as refused
        self.refused: dict[str, str] = {}

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        settings = crawler.settings
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        # a pasted password may hold "/" or "@": the URL is parsed with its credentials encoded
        proxy_host = urlsplit(quoted(settings.get("FIXEDPROXY_URL") or "")).hostname
        return cls(reactor, cache_size, settings.getfloat("DNS_TIMEOUT"),
                   allow_private=settings.getbool("NETGUARD_ALLOW_PRIVATE"),
                   trusted_hosts=[proxy_host] if proxy_host else [])

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:  # noqa: N802 (Twisted's name)
        answer = self.resolve(name, timeout)
        answer.addCallback(self._checked, name)
        return answer

    def resolve(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        """The answer for ``name`` (cached): the system resolver, as Scrapy's default asks it."""
        return super().getHostByName(name, timeout)

    def _checked(self, address: str, name: str) -> str:
        if self.allow_private or name.lower() in self.trusted_hosts:
            return address
        why = refusal(address)
        if why is not None:
            message = f"refused to connect to {name}: it resolves to {address} ({why}), not a public address"
            if name.lower() not in self.refused:
                logger.warning("%s", message)
            self.refused[name.lower()] = message
            raise RefusedAddress(message)
        return address


def refused_host(host: str) -> str | None:
    """Why the installed resolver refused ``host``'s answer, if it did."""
    from twisted.internet import reactor

    resolver = getattr(reactor, "resolver", None)
    return resolver.refused.get(host.lower()) if isinstance(resolver, GuardedResolver) else None
