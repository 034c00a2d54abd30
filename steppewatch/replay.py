"""A local HTTP server that replays recorded news sites, for tests and the offline demo.

It answers as an HTTP proxy (absolute-form request targets) and as a plain server (the
``Host`` header picks the site), so the crawler keeps real domain names such as
``steppe-times.test`` while every byte travels over real HTTP on 127.0.0.1 and nothing
reaches the internet: an unknown host gets a 502, never a forwarded request.

A site is a directory named after its host under the sites root. ``/a/b/`` maps to
``a/b/index.html``, ``/a/b.xml`` to ``a/b.xml``. An optional ``_site.yaml`` sets the
default ``charset`` (``none`` sends ``text/html`` with no charset parameter) and
``routes`` keyed by path (with query string) that override the file mapping:

    routes:
      /gone.html: {status: 404}
      /flaky.html: {sequence: [{status: 500}, {}]}      # 1st request 500, then the file
      /busy.html: {sequence: [{status: 429, headers: {Retry-After: "1"}}, {}]}
      /old.html: {redirect: /new.html, status: 301}
      /feed.rss: {file: feed.rss, require_ua: "\\+https?://", else: {file: shell.html}}
      /archive?date=2024-12-01: {file: archive/2024-12-01.html}

Faults, for the reliability tests (``fault:`` with its options):

      /slow/: {fault: hang, seconds: 5}          # accept, say nothing, close after 5 s
      /reset/: {fault: reset}                    # close the connection with a TCP RST
      /cut/: {fault: truncate, file: a.html}     # promise the whole body, send half, close
      /bomb/: {fault: gzip_bomb, size: 1073741824}  # Content-Encoding: gzip inflating to 1 GiB
      /huge/: {fault: big, size: 12582912}       # a 12 MiB page (Content-Length sent)
      /flood/: {fault: big_stream, size: 12582912}  # 12 MiB with no Content-Length
      /noise/: {fault: binary, size: 20000}      # random bytes served as text/html

Every request is logged (method, host, path, user agent) so tests can count fetches.
"""

from __future__ import annotations

import mimetypes
import random
import re
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".txt": "text/plain",
    ".gz": "application/gzip",
    ".json": "application/json",
}


@dataclass(frozen=True)
class Hit:
    method: str
    host: str
    path: str
    user_agent: str


@dataclass
class _Site:
    root: Path
    charset: str | None
    routes: dict[str, dict[str, Any]]


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when a crawl opens dozens at
    # once; the dropped ones then hang until the crawler's download timeout
    request_queue_size = 256


@dataclass
class ReplayServer:
    """Serve every site directory under ``root``; start() returns the proxy URL."""

    root: Path
    host: str = "127.0.0.1"
    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    # called with each request's host and target before it is answered: a test's fault
    # injected at an exact point of a crawl (the crawler cannot see the answer before it)
    on_request: Callable[[str, str], None] | None = None
    _sites: dict[str, _Site] = field(default_factory=dict)
    _counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        for sub in sorted(p for p in self.root.iterdir() if p.is_dir()):
            conf_path = sub / "_site.yaml"
            conf = yaml.safe_load(conf_path.read_text("utf-8")) if conf_path.exists() else {}
            conf = conf or {}
            charset = conf.get("charset", "utf-8")
            self._sites[sub.name.lower()] = _Site(
                root=sub,
                charset=None if charset in (None, "none") else charset,
                routes=conf.get("routes") or {},
            )

    @property
    def hosts(self) -> list[str]:
        return sorted(self._sites)

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> str:
        server = self

        class Handler(_Handler):
            replay = server

        self._httpd = _Server((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ReplayServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()
            self._counts.clear()

    def count(self, host: str | None = None, path_re: str = "") -> int:
        pattern = re.compile(path_re)
        with self._lock:
            return sum(
                1 for h in self.hits if (host is None or h.host == host) and pattern.search(h.path)
            )

    def respond(
        self, host: str, target: str, user_agent: str, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        """The (status, headers, body) for one request; pure apart from the request log."""
        with self._lock:
            self.hits.append(Hit(method, host, target, user_agent))
            if method != "HEAD":  # a HEAD must not use up a step of a fault sequence
                self._counts[(host, target)] += 1
            nth = self._counts[(host, target)] or 1
        if self.on_request is not None:
            self.on_request(host, target)
        site = self._sites.get(host)
        if site is None:
            return 502, {"Content-Type": "text/plain"}, f"replay: unknown host {host}\n".encode()
        rule = site.routes.get(target) or site.routes.get(urlsplit(target).path)
        return self._apply(site, target, rule or {}, nth, user_agent)

    def page(self, url: str, attempts: int = 3) -> tuple[int, dict[str, str], bytes]:
        """What a GET of ``url`` answers, without HTTP: for tests and benchmarks that
        extract fixture pages directly. Retried like a crawler would on 429 and 5xx,
        which the fault routes answer first."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for _ in range(attempts):
            status, headers, body = self.respond(parts.hostname or "", target, "steppewatch-test")
            if status != 429 and status < 500:
                break
        return status, headers, body

    def _apply(
        self, site: _Site, target: str, rule: dict[str, Any], nth: int, ua: str
    ) -> tuple[int, dict[str, str], bytes]:
        if "sequence" in rule:
            seq = rule["sequence"]
            step = dict(seq[min(nth, len(seq)) - 1])
            return self._apply(site, target, step, nth, ua)
        if "require_ua" in rule:
            ok = re.search(rule["require_ua"], ua or "")
            chosen = {k: v for k, v in rule.items() if k not in ("require_ua", "else")}
            return self._apply(site, target, chosen if ok else rule.get("else", {}), nth, ua)
        headers = {str(k): str(v) for k, v in (rule.get("headers") or {}).items()}
        if "fault" in rule:
            return self._fault(site, target, rule, headers, nth, ua)
        if "redirect" in rule:
            headers["Location"] = rule["redirect"]
            return int(rule.get("status", 301)), headers, b""
        status = int(rule.get("status", 200))
        if "body" in rule:
            body = str(rule["body"]).encode("utf-8")
            headers.setdefault("Content-Type", rule.get("content_type", "text/html; charset=utf-8"))
            return status, headers, body
        if status >= 400 and "file" not in rule:
            headers.setdefault("Content-Type", "text/html; charset=utf-8")
            return status, headers, f"<html><body><h1>{status}</h1></body></html>".encode()
        rel = rule.get("file") or _file_for(target)
        path = (site.root / rel).resolve()
        if site.root.resolve() not in path.parents or not path.is_file():
            return 404, {"Content-Type": "text/html; charset=utf-8"}, b"<html><body>Not found</body></html>"
        ctype = rule.get("content_type") or _TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or ("text/html" if not path.suffix else "application/octet-stream")
        )
        if ctype.startswith("text/") and "charset" not in ctype:
            charset = rule.get("charset", site.charset)
            if charset and charset != "none":
                ctype += f"; charset={charset}"
        headers.setdefault("Content-Type", ctype)
        return status, headers, path.read_bytes()


    def _fault(self, site: _Site, target: str, rule: dict[str, Any], headers: dict[str, str], nth: int,
               ua: str) -> tuple[int, dict[str, str], bytes]:
        """A misbehaving response; the handler acts on ``X-Replay-Fault`` (never sent)."""
        fault = str(rule["fault"])
        size = int(rule.get("size", 0))
        headers[_FAULT] = fault
        if fault == "hang":
            headers[_FAULT_SECONDS] = str(rule.get("seconds", 60))
            return 200, headers, b""
        if fault == "truncate":
            status, file_headers, body = self._apply(site, target, {k: v for k, v in rule.items() if k != "fault"},
                                                     nth, ua)
            return status, {**file_headers, **headers}, body
        if fault == "gzip_bomb":
            headers.update({"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"})
            return 200, headers, _gzip_zeros(size or 1 << 30)
        if fault in ("big", "big_stream"):
            headers["Content-Type"] = "text/html; charset=utf-8"
            chunk = b"<p>" + b"filler " * 140 + b"</p>\n"
            return 200, headers, b"<html><body>" + chunk * (size // len(chunk) + 1)
        if fault == "binary":
            headers["Content-Type"] = "text/html; charset=utf-8"
            return 200, headers, random.Random(target).randbytes(size or 20_000)
        return 200, headers, b""  # reset: the handler closes before answering


_FAULT = "X-Replay-Fault"
_FAULT_SECONDS = "X-Replay-Fault-Seconds"


@lru_cache(maxsize=4)
def _gzip_zeros(size: int) -> bytes:
    out = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [out.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + out.flush()


def _file_for(target: str) -> str:
    path = urlsplit(target).path.lstrip("/")
    if not path or path.endswith("/"):
        return path + "index.html"
    return path


class _Handler(BaseHTTPRequestHandler):
    replay: ReplayServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self._serve(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        if self.path.startswith(("http://", "https://")):
            parts = urlsplit(self.path)
            host = (parts.hostname or "").lower()
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
        else:
            host = (self.headers.get("Host") or "").split(":")[0].lower()
            target = self.path
        status, headers, body = self.replay.respond(host, target, self.headers.get("User-Agent", ""), self.command)
        fault = headers.pop(_FAULT, None)
        if fault == "hang":
            time.sleep(float(headers.pop(_FAULT_SECONDS)))
            self.close_connection = True
            return
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if fault == "big_stream":  # no length: the body ends when the connection closes
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            try:
                self.wfile.write(body[: len(body) // 2] if fault == "truncate" else body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up on a fault, as it should
                pass
        if fault == "truncate":
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .hits
        pass


def serve_forever(root: Path, port: int = 8765) -> None:
    """Run the replay server in the foreground (``python -m steppewatch.replay``)."""
    server = ReplayServer(root, port=port)
    print(f"replaying {', '.join(server.hosts)} at {server.start()} (use it as an HTTP proxy)")
    assert server._thread is not None
    try:
        server._thread.join()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    import sys

    serve_forever(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/sites"))
