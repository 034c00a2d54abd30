"""Credentials in URLs found by parsing: a password with "/", "@" or ":" as an operator pasted
it is never printed, and clients get it encoded."""

from __future__ import annotations

import string
from urllib.parse import unquote, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from steppewatch.alerts.mail import SMTPMailer
from steppewatch.redaction import credentials, quoted, redact, redact_text

# "%" aside: a URL's user information is percent-decoded (``%40`` is "@"), as every client reads it
PASSWORD = st.text(alphabet=string.ascii_letters + string.digits + "/@:!#&*+=?~.-_", min_size=6, max_size=30)


@given(PASSWORD)
def test_a_pasted_password_never_survives_redaction(password: str) -> None:
    for url in (f"smtp://desk:{password}@mail.example.org:587", f"postgresql+psycopg://sw:{password}@db:5432/sw",
                f"http://proxy:{password}@10.0.0.1:3128", f"https://key:{password}@minio.example.org/bucket"):
        assert password not in redact(url)
        message = f"could not connect to {url} (timeout), giving up"
        assert password not in redact_text(message) and "giving up" in redact_text(message)
        assert credentials(url)[1] == password
        parts = urlsplit(quoted(url))
        assert unquote(parts.password or "") == password and parts.hostname in (
            "mail.example.org", "db", "10.0.0.1", "minio.example.org")


def test_urls_without_credentials_are_left_alone() -> None:
    for url in ("s3://bucket/prefix", "sqlite:///data/index.sqlite", "http://site.test/a@b", "smtp://mail:25"):
        assert redact(url) == url and quoted(url) == url
    assert redact("smtp://user@mail:25") == "smtp://user@mail:25"


def test_smtp_url_with_slash_and_at_in_the_password() -> None:
    mailer = SMTPMailer.from_url("smtp://desk:pa/ss@w0rd@mail.example.org:587?starttls=require")
    assert (mailer.host, mailer.port, mailer.username, mailer.password) == (
        "mail.example.org", 587, "desk", "pa/ss@w0rd")
    assert mailer.require_starttls and "pa/ss" not in repr(mailer)
    assert SMTPMailer.from_url("smtp://desk:p%40ss%2Fw@mail:25").password == "p@ss/w"  # encoded, as URLs are
