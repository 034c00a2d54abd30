"""Credentials in URLs, found by parsing: for messages (redacted) and for connecting (quoted).

Operators paste passwords as they are, ``/`` and ``@`` included (``smtp://desk:pa/ss@w0rd@mail:587``).
``urllib`` then splits the URL at the first ``/`` and takes part of the password for a host,
and a regular expression that stops at ``/`` prints the rest of it. Here the user information
is everything between ``scheme://`` and the last ``@`` that is followed by a host: every URL
with credentials (SMTP, index, proxy, S3 endpoint) goes through ``redact`` before it reaches a
log, an exception message, a manifest or an XCom value, and through ``quoted`` before a client
library parses it.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

_SCHEME = re.compile(r"\b([a-z][a-z0-9+.\-]*)://", re.I)
# a host and anything after a colon (a port, or something a port should have been)
_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9.\-_]*)(:[^/?#@\s]*)?$", re.I)


def split_credentials(url: str) -> tuple[str, str | None, str]:
    """(``scheme://``, user information or None, the rest) of a URL."""
    match = _SCHEME.match(url)
    if not match:
        return "", None, url
    head, tail = url[: match.end()], url[match.end():]
    for at in [i for i, ch in enumerate(tail) if ch == "@"][::-1]:
        host = re.split(r"[/?#]", tail[at + 1:], maxsplit=1)[0]
        user = tail[:at].split(":", 1)[0]
        # a user name has no "/", "?" or "#": an "@" after one is in a path or a query
        if _HOST.match(host) and not re.search(r"[/?#]", user):
            return head, tail[:at], tail[at + 1:]
    return head, None, tail


def credentials(url: str) -> tuple[str | None, str | None]:
    """(user, password) of a URL, percent-decoded; None where there is none."""
    _, userinfo, _ = split_credentials(url)
    if userinfo is None:
        return None, None
    user, sep, password = userinfo.partition(":")
    return unquote(user) or None, unquote(password) if sep else None


def redact(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``; the user name is kept."""
    head, userinfo, rest = split_credentials(url)
    if userinfo is None or ":" not in userinfo:
        return url
    return f"{head}{userinfo.split(':', 1)[0]}:***@{rest}"


def quoted(url: str) -> str:
    """The URL with its user and password percent-encoded, as client libraries parse it."""
    head, userinfo, rest = split_credentials(url)
    if userinfo is None:
        return url
    user, password = credentials(url)
    encoded = quote(user or "", safe="") + (":" + quote(password, safe="") if password is not None else "")
    return f"{head}{encoded}@{rest}"


def redact_text(text: str) -> str:
    """Every URL with a password in free text (an exception message, a log line), redacted."""
    out, pos = [], 0
    for match in _SCHEME.finditer(text):
        if match.start() < pos:
            continue
        end = len(text)
        space = re.search(r"\s", text[match.start():])
        if space:
            end = match.start() + space.start()
        out.append(text[pos:match.start()])
        out.append(redact(text[match.start():end]))
        pos = end
    out.append(text[pos:])
    return "".join(out)
