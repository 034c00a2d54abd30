"""URL canonicalisation: one article, one URL, one id.

Feeds, sitemaps and listings link the same article under variants: tracking
parameters, fragments, AMP or mobile copies, ``http`` vs ``https`` redirects. The
canonical URL is the page's own ``<link rel=canonical>``/``og:url`` when it stays inside
the site's allowed domains, else the fetched URL, cleaned the same way either way.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

_TRACKING = re.compile(
    r"^(utm_[a-z_]+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|ysclid|mc_cid|mc_eid|"
    r"_ga|_gl|igshid|ref|ref_src|amp)$",
    re.IGNORECASE,
)
_AMP_PATH = re.compile(r"(/amp(?=/|$)|\.amp(?=\.html?$|$)|/amp\.html$)", re.IGNORECASE)
_MOBILE_HOST = re.compile(r"^(m|mobile|amp)\.", re.IGNORECASE)


def is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def clean_url(url: str) -> str:
    """Drop tracking parameters and fragments, sort the query, normalise escapes and case."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    netloc = host if parts.port in (None, 80, 443) else f"{host}:{parts.port}"
    rebuilt = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", urlencode(query), ""))
    return canonicalize_url(rebuilt, keep_fragments=False)


def strip_amp(url: str, allowed_domains: list[str] | None = None) -> str:
    """Map an AMP or mobile variant to the regular page URL (by the common URL shapes).

    With ``allowed_domains``, a mobile host prefix is kept where dropping it would leave
    them: ``m.kz`` is a site, not the mobile copy of ``kz``.
    """
    parts = urlsplit(url)
    host = _MOBILE_HOST.sub("", parts.netloc)
    if allowed_domains is not None and not in_domains(f"//{host}", allowed_domains):
        host = parts.netloc
    path = parts.path
    if re.search(r"/amp/?$", path, re.IGNORECASE):
        path = re.sub(r"/amp/?$", "/", path, flags=re.IGNORECASE)
    elif re.match(r"^/amp/", path, re.IGNORECASE):
        path = path[4:]
    else:
        path = _AMP_PATH.sub("", path)
    return urlunsplit((parts.scheme, host, path or "/", parts.query, ""))


def _ascii_host(host: str) -> str:
    """A host name as DNS sees it: lower case, no trailing dot, IDNA (``пример.kz`` -> ``xn--e1afmkfd.kz``)."""
    host = host.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def in_domains(url: str, domains: list[str]) -> bool:
    """Whether the URL's host is one of ``domains`` or below one, IDN spellings compared as IDNA."""
    try:
        host = _ascii_host(urlsplit(url).hostname or "")
    except ValueError:
        return False
    allowed = [_ascii_host(d) for d in domains]
    return bool(host) and any(host == d or host.endswith("." + d) for d in allowed)


def canonical_url(
    fetched_url: str, declared: list[str | None], allowed_domains: list[str]
) -> str:
    """The article's canonical URL, from declared candidates (rel=canonical, og:url) first."""
    for candidate in declared:
        if not candidate:
            continue
        absolute = urljoin(fetched_url, candidate.strip())
        if is_http_url(absolute) and in_domains(absolute, allowed_domains):
            return clean_url(strip_amp(absolute, allowed_domains))
    return clean_url(strip_amp(fetched_url, allowed_domains))
