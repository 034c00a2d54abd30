"""Alert messages (built with the standard ``email`` package) and their delivery.

``STEPPEWATCH_SMTP_URL`` selects SMTP: ``smtp://user:pass@host:587`` (STARTTLS when the
server offers it; ``?starttls=require`` to insist), ``smtps://user:pass@host:465``
(implicit TLS). Without it, messages are written as ``.eml`` files under
``data/outbox/`` (``STEPPEWATCH_OUTBOX_DIR``), the embedded default; ``mailer_for`` takes
these from ``Config``, and the mailer carries the From address (``STEPPEWATCH_MAIL_FROM``). Header values pass
through ``header_value`` (no control characters, no encoded-word openers), so a title or a
rule name cannot inject a header on any Python patch level; bodies are HTML-escaped.
Message-IDs are deterministic per alert (``message_id``).
"""

from __future__ import annotations

import hashlib
import html
import re
import smtplib
import ssl
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from steppewatch.errors import ConfigError
from steppewatch.redaction import credentials, quoted, redact

DEFAULT_FROM = "steppewatch@localhost"


class Mailer(Protocol):
    sender: str  # the From address of the messages built for this mailer

    def send(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Deliver; return refused recipients (address -> (code, reason)); raise if nothing went."""
        ...


def one_line(value: str, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# every control character (C0, DEL, C1) and the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]")


def header_value(value: str, limit: int = 300) -> str:
    """``value`` made safe for a mail header whatever the Python patch level.

    CPython before 3.11.10 (CVE-2024-6923) folds a header holding an RFC 2047 encoded word
    without quoting the newlines the word decodes to, so a title such as
    ``=?utf-8?q?Astana=0D=0ABcc:_x@evil?=`` became real ``Bcc:`` lines and a blank line that
    hijacked the body. Here no control character, line separator or encoded-word opener
    (``=?``) survives: the text is shown as written, one line, never decoded into headers.
    """
    text = _CONTROL.sub(" ", str(value)).replace("=?", "=\u2060?")  # a word joiner breaks "=?"
    return one_line(text, limit)


@dataclass
class SMTPMailer:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    implicit_tls: bool = False
    require_starttls: bool = False
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None
    sender: str = DEFAULT_FROM

    @classmethod
    def from_url(cls, url: str) -> SMTPMailer:
        # the credentials found by parsing (a password may hold "/" or "@" as pasted), then
        # the rest read from the URL with them encoded
        username, password = credentials(url)
        parts = urlsplit(quoted(url))
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname or port == -1:
            raise ConfigError(f"STEPPEWATCH_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://…, "
                             f"got {redact(url)!r}")
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=port or (465 if parts.scheme == "smtps" else 25),
            username=username,
            password=password,
            implicit_tls=parts.scheme == "smtps",
            require_starttls=query.get("starttls", [""])[0] == "require",
        )

    def send(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        context = self.ssl_context or ssl.create_default_context()
        if self.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            client.ehlo()
            if not self.implicit_tls and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif self.require_starttls and not self.implicit_tls:
                raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
            if self.username:
                client.login(self.username, self.password or "")
            return client.send_message(message)
        finally:
            try:
                client.quit()
            except smtplib.SMTPException:
                client.close()
            except OSError:
                pass


@dataclass
class DirectoryMailer:
    """The embedded default: one .eml file per message, named by its Message-ID."""

    directory: Path
    sender: str = DEFAULT_FROM

    def send(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:24] + ".eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(bytes(message))
        tmp.replace(self.directory / name)
        return {}


def mailer_for(smtp_url: str | None, outbox_dir: str | Path = "data/outbox", sender: str = DEFAULT_FROM) -> Mailer:
    """SMTP when a URL is configured (``Config.smtp_url``), else ``.eml`` files under ``outbox_dir``."""
    if smtp_url:
        return replace(SMTPMailer.from_url(smtp_url), sender=sender)
    return DirectoryMailer(Path(outbox_dir), sender=sender)


@dataclass(frozen=True)
class StoryItem:
    """One story in a message: its headline article, snippet and the other sources."""

    title: str
    url: str
    site: str
    published: str | None
    language: str | None
    snippet_text: str
    snippet_html: str
    also: tuple[tuple[str, str, str], ...] = ()  # (site, title, url)


def message_id(key: str) -> str:
    """The same Message-ID for every sending of one alert (rule and story, or a digest's period):
    a message sent again after a crash between the server's 250 and "marked sent" is the same
    message to the receiver, which can drop the repeat (``make_msgid`` adds time and chance)."""
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@steppewatch>"


def build_message(subject: str, recipients: list[str], text: str, rich: str, key: str,
                  sender: str = DEFAULT_FROM) -> EmailMessage:
    # Long lines unfolded: the stdlib's folding of long non-ASCII subjects drops the
    # space between encoded words (the subject would read "процессаобсудят").
    msg = EmailMessage(policy=SMTP.clone(max_line_length=998))
    msg["Subject"] = header_value(subject)
    msg["From"] = formataddr(("steppewatch", sender))
    msg["To"] = ", ".join(header_value(r, 200) for r in recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(key)
    msg["X-Steppewatch-Key"] = header_value(key, 200)
    msg.set_content(text)
    msg.add_alternative(rich, subtype="html")
    return msg


def _item_text(item: StoryItem) -> str:
    lines = [one_line(item.title, 1000), item.url,
             f"{item.site} · {item.published or 'undated'} · {item.language or '?'}",
             "", item.snippet_text]
    if item.also:
        lines += ["", "Also reported by:"] + [f"  - {site}: {one_line(title)} {url}" for site, title, url in item.also]
    return "\n".join(lines)


def _item_html(item: StoryItem) -> str:
    e = html.escape
    also = ""
    if item.also:
        also = "<p>Also reported by:</p><ul>" + "".join(
            f'<li>{e(site)}: <a href="{e(url, quote=True)}">{e(one_line(title))}</a></li>'
            for site, title, url in item.also
        ) + "</ul>"
    return (f'<h2><a href="{e(item.url, quote=True)}">{e(one_line(item.title, 1000))}</a></h2>'
            f"<p>{e(item.site)} · {e(item.published or 'undated')} · {e(item.language or '?')}</p>"
            f"<blockquote>{item.snippet_html}</blockquote>{also}")


def story_message(rule: str, recipients: list[str], item: StoryItem, key: str,
                  sender: str = DEFAULT_FROM) -> EmailMessage:
    text = f"Alert rule: {rule}\n\n{_item_text(item)}\n"
    rich = f"<html><body><p>Alert rule: <b>{html.escape(rule)}</b></p>{_item_html(item)}</body></html>"
    return build_message(f"[steppewatch] {rule}: {item.title}", recipients, text, rich, key, sender)


def digest_message(rule: str, recipients: list[str], items: list[StoryItem], period: str, key: str,
                   sender: str = DEFAULT_FROM) -> EmailMessage:
    text = f"Alert rule: {rule} — {len(items)} stories, {period}\n\n" + "\n\n----\n\n".join(
        _item_text(i) for i in items) + "\n"
    rich = (f"<html><body><p>Alert rule: <b>{html.escape(rule)}</b> — {len(items)} stories, "
            f"{html.escape(period)}</p>" + "<hr>".join(_item_html(i) for i in items) + "</body></html>")
    return build_message(f"[steppewatch] {rule}: {len(items)} stories, {period}", recipients, text, rich, key,
                         sender)


def as_dict(message: EmailMessage) -> dict[str, Any]:
    return {"subject": message["Subject"], "to": message["To"], "message_id": message["Message-ID"]}
