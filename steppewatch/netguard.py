"""Which addresses the project may connect to: public unicast only, every IPv6 form classified.

Python's ``ipaddress`` before 3.11.10 misjudges IPv4-mapped forms (``::ffff:127.0.0.1`` is
"global" there) and knows nothing of addresses that embed an IPv4 address to reach it
through a translator or a tunnel. So every IPv6 form is taken apart here: IPv4-mapped and
IPv4-compatible addresses, NAT64 (``64:ff9b::/96``) and 6to4 (``2002::/16``) are judged by
the IPv4 address they carry; local-use NAT64, Teredo, site-local, unique-local,
documentation, link-local, loopback, multicast and other reserved ranges are refused.
The crawl's ``NetGuardMiddleware`` and ``sites --check`` both ask ``refusal``.
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_REFUSED_V6 = [
    (ipaddress.ip_network("2001::/32"), "Teredo tunnel"),
    (ipaddress.ip_network("2001:db8::/32"), "documentation"),
    (ipaddress.ip_network("fec0::/10"), "site-local"),
    (ipaddress.ip_network("fc00::/7"), "unique-local"),
    (ipaddress.ip_network("fe80::/10"), "link-local"),
    (ipaddress.ip_network("ff00::/8"), "multicast"),
    (ipaddress.ip_network("100::/64"), "discard-only"),
    (ipaddress.ip_network("2001:10::/28"), "ORCHID"),
    (ipaddress.ip_network("64:ff9b:1::/48"), "local-use NAT64"),
]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_V4_REFUSED = [
    (ipaddress.ip_network("100.64.0.0/10"), "carrier-grade NAT"),
    (ipaddress.ip_network("192.0.0.0/24"), "IETF protocol assignments"),
    (ipaddress.ip_network("198.18.0.0/15"), "benchmarking"),
]


def refusal(address: Address | str) -> str | None:
    """Why ``address`` is not a public unicast address, or None when it is."""
    if isinstance(address, str):
        address = ipaddress.ip_address(address.strip("[]").split("%")[0])
    if isinstance(address, ipaddress.IPv6Address):
        return _refusal_v6(address)
    return _refusal_v4(address)


def _refusal_v4(address: ipaddress.IPv4Address) -> str | None:
    for name in ("is_loopback", "is_private", "is_link_local", "is_multicast", "is_reserved", "is_unspecified"):
        if getattr(address, name):
            return f"{name.removeprefix('is_').replace('_', '-')} IPv4 address"
    for network, what in _V4_REFUSED:
        if address in network:
            return f"{what} IPv4 address"
    if not address.is_global:
        return "non-global IPv4 address"
    return None


def _refusal_v6(address: ipaddress.IPv6Address) -> str | None:
    embedded = _embedded_v4(address)
    if embedded is not None:
        inner = _refusal_v4(embedded)
        return f"an IPv6 form of {embedded}: {inner}" if inner else None
    if address.is_loopback or address.is_unspecified:
        return "loopback or unspecified IPv6 address"
    for network, what in _REFUSED_V6:
        if address in network:
            return f"{what} IPv6 address"
    if address.is_private or address.is_reserved or not address.is_global:
        return "non-global IPv6 address"
    return None


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form reaches, if it is one of the forms that carry one."""
    packed = address.packed
    if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        return address.ipv4_mapped
    if packed[:12] == bytes(12) and int(address) > 1:  # ::a.b.c.d (IPv4-compatible, deprecated)
        return ipaddress.IPv4Address(packed[12:])
    if address in _NAT64:
        return ipaddress.IPv4Address(packed[12:])
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address(packed[2:6])
    return None
