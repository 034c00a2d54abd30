"""SMTP delivery over STARTTLS and implicit TLS, with authentication, against aiosmtpd."""

from __future__ import annotations

import datetime as dt
import ssl
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from steppewatch.alerts.mail import SMTPMailer, StoryItem, story_message
from tests.conftest import free_port


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address(
                "127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Sink:
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
        self.received.append(envelope.content)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN201
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"analyst" and \
            auth_data.password == b"s3cret pass"
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


def message():  # noqa: ANN201
    item = StoryItem("Астана talks resume", "http://steppe-times.test/a/", "steppe_times", "2024-12-03", "en",
                     "the **Astana talks**", "the <mark>Astana talks</mark>")
    return story_message("Astana talks", ["a@example.org"], item, "Astana talks/abc")


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_tls_and_auth(tmp_path: Path, mode: str) -> None:
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    sink = Sink()
    port = free_port()
    if mode == "starttls":
        controller = Controller(sink, hostname="127.0.0.1", port=port, tls_context=server_ctx, require_starttls=True,
                                authenticator=sink.authenticate, auth_require_tls=True)
        url = f"smtp://analyst:s3cret%20pass@127.0.0.1:{port}?starttls=require"
    else:
        controller = Controller(sink, hostname="127.0.0.1", port=port, ssl_context=server_ctx,
                                authenticator=sink.authenticate, auth_require_tls=False)
        url = f"smtps://analyst:s3cret%20pass@127.0.0.1:{port}"
    controller.start()
    try:
        mailer = SMTPMailer.from_url(url)
        assert mailer.password == "s3cret pass" and "s3cret" not in repr(mailer)
        mailer.ssl_context = client_ctx
        assert mailer.send(message()) == {}
        untrusted = SMTPMailer.from_url(url)  # the default context does not trust a self-signed server
        with pytest.raises(ssl.SSLError):
            untrusted.send(message())
    finally:
        controller.stop()
    assert sink.logins == ["analyst"] and len(sink.received) == 1
    parsed = message_from_bytes(sink.received[0], policy=policy.default)
    assert parsed["Subject"] == "[steppewatch] Astana talks: Астана talks resume"
