"""Nobody let in: the crawler stays on its sites and off the machine's own network, no
secret reaches a log, a manifest, an XCom value or an error message, page content cannot
steer where things are stored, alert mail escapes what it quotes, and configuration and
XML are parsed safely."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
import yaml

from steppewatch.replay import ReplayServer
from tests.conftest import S3_ENV, SMTPSink, free_port
from tests.reliability.helpers import (
    SiteSpec,
    article_html,
    crawl,
    source,
    write_registry,
    write_site,
)


def test_offsite_and_non_http_links_are_never_requested(tmp_path: Path) -> None:
    items = "".join(f"<item><title>x</title><link>{link}</link></item>" for link in (
        "http://elsewhere.test/news/1/", "https://evil.example/steal", "file:///etc/passwd", "ftp://site.test/x",
        "javascript:fetch('http://evil.example')", "gopher://site.test/1"))
    entry = write_site(tmp_path / "sites", SiteSpec("site.test", "site", articles=2, feed_items=[items]))
    (tmp_path / "sites" / "elsewhere.test").mkdir()
    with ReplayServer(tmp_path / "sites") as server:
        result = crawl(write_registry(tmp_path / "sites.yaml", [entry]), str(tmp_path / "store"),
                       f"sqlite:///{tmp_path}/i.sqlite", server.url)
        hosts = {h.host for h in server.hits}
    assert result.returncode == 0, result.stderr[-2000:]
    assert hosts == {"site.test"}
    assert result.summary["sites"]["site"]["stored"] == 2


def test_a_crawl_opens_no_remote_control_server(tmp_path: Path) -> None:
    """Scrapy 2.19 starts an HTTP server that runs Python code sent to it (token in a job file
    under the user's state directory) unless told not to; the telnet console is off too."""
    entry = write_site(tmp_path / "sites", SiteSpec("site.test", "site", articles=1))
    state = tmp_path / "state"
    with ReplayServer(tmp_path / "sites") as server:
        result = crawl(write_registry(tmp_path / "sites.yaml", [entry]), str(tmp_path / "store"),
                       f"sqlite:///{tmp_path}/i.sqlite", server.url, env={"XDG_STATE_HOME": str(state)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Remote control" not in result.stderr and "Telnet console" not in result.stderr
    assert not list(state.rglob("*.json")), "no job file with a token was written"


def test_hosts_on_the_machines_own_network_are_refused(tmp_path: Path) -> None:
    """Loopback, private and link-local targets are refused, by address or by what a name resolves to."""
    import asyncio

    from scrapy import Request
    from scrapy.exceptions import IgnoreRequest

    from spiders.middlewares import NetGuardMiddleware
    from steppewatch.registry import RegistryError, load_registry

    guard = NetGuardMiddleware()
    for url in ("http://127.0.0.1:8080/", "http://localhost/admin", "http://10.1.2.3/", "http://192.168.0.1/",
                "http://[::1]/", "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://0.0.0.0/",
                "http://[::ffff:127.0.0.1]:8080/", "http://[::127.0.0.1]/", "http://[64:ff9b::a9fe:a9fe]/",
                "http://[2002:7f00:1::1]/", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "http://[fec0::1]/",
                "http://[2001:db8::1]/", "file:///etc/passwd", "ftp://site.test/x"):
        with pytest.raises(IgnoreRequest, match="refused"):
            asyncio.run(guard.process_request(Request(url)))
    assert asyncio.run(guard.process_request(Request("http://steppe-times.test/news/1/"))) is None  # no such name here
    assert asyncio.run(NetGuardMiddleware(allow_private=True).process_request(Request("http://127.0.0.1/"))) is None
    # and the registry does not take an address for a site's domain in the first place
    (tmp_path / "sites.yaml").write_text(yaml.safe_dump({"sites": [{
        "id": "inside", "name": "x", "country": "KZ", "allowed_domains": ["127.0.0.1"],
        "feeds": [{"url": "http://127.0.0.1/feed.xml"}]}]}))
    with pytest.raises(RegistryError, match="not a domain name"):
        load_registry(tmp_path / "sites.yaml")


def test_a_redirect_to_the_cloud_metadata_address_is_refused(tmp_path: Path) -> None:
    spec = SiteSpec("meta.test", "meta", articles=1,
                    extra={"/go/": {"redirect": "http://169.254.169.254/latest/meta-data/iam/", "status": 302}},
                    registry_extra={"allowed_domains": ["meta.test", "169.254.169.254"]})  # past the offsite check
    entry = write_site(tmp_path / "sites", spec)
    with ReplayServer(tmp_path / "sites") as server:
        result = crawl(write_registry(tmp_path / "sites.yaml", [entry]), str(tmp_path / "store"),
                       f"sqlite:///{tmp_path}/i.sqlite", server.url)
        hosts = {h.host for h in server.hits}
    assert result.returncode == 0, result.stderr[-2000:]
    assert "169.254.169.254" not in hosts
    site = result.summary["sites"]["meta"]
    assert site["errors"].get("refused") == 1 and site["refused"] == {"private_address": 1} and site["stored"] == 1


class CountingListener:
    """A port on this machine that counts the connections made to it (and closes each)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        import socket

        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


@pytest.mark.parametrize("allow_private", [False, True], ids=["guarded", "control-private-allowed"])
def test_a_name_re_pointed_at_the_machine_after_the_check_is_never_connected_to(tmp_path: Path,
                                                                              allow_private: bool) -> None:
    """DNS rebinding, at a redirect hop: the site's feed redirects to a host of its own domain;
    the middleware's check finds no address for it (or a public one), then the answer Twisted
    connects with points at this machine. The resolver the crawl connects through checks
    that answer: zero connections. The control run, with private addresses allowed, shows
    the listener would have been reached."""
    listener = CountingListener()
    spec = SiteSpec("hop.test", "hop", articles=0,
                    feed_route={"redirect": f"http://inner.hop.test:{listener.port}/feed.xml", "status": 302})
    entry = write_site(tmp_path / "sites", spec)
    try:
        with ReplayServer(tmp_path / "sites") as server:  # hop.test, reached directly (no proxy)
            port = server.url.rsplit(":", 1)[1]
            entry["feeds"] = [{"url": f"http://hop.test:{port}/feed.xml"}]
            answers = {"hop.test": "127.0.0.1", "inner.hop.test": "127.0.0.1"}
            result = crawl(write_registry(tmp_path / "sites.yaml", [entry]), str(tmp_path / "store"),
                           f"sqlite:///{tmp_path}/i.sqlite", None,
                           extra=["TWISTED_DNS_RESOLVER=tests.reliability.rebinding.RebindingResolver",
                                  "RETRY_TIMES=0", f"NETGUARD_ALLOW_PRIVATE={str(allow_private).lower()}"],
                           env={"STEPPEWATCH_TEST_DNS": json.dumps(answers),
                                "STEPPEWATCH_TEST_DNS_TRUSTED": "hop.test"})
            fetched = server.count("hop.test", "^/feed.xml")
    finally:
        listener.close()
    assert fetched == 1, result.stderr[-3000:]  # the site itself was reached
    if allow_private:
        assert listener.connections >= 1
        return
    assert listener.connections == 0, "the crawl connected to this machine"
    assert "refused to connect to inner.hop.test: it resolves to 127.0.0.1" in result.stderr
    assert result.summary is not None, result.stderr[-3000:]
    assert source(result.summary, "hop", "feed.xml")["error"] == "refused"


def test_no_secret_reaches_output_manifests_xcom_or_errors(tmp_path: Path, moto_server: str, pg_index_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    pg_secret, proxy_secret, smtp_secret = "pg-Secr3t-pw", "proxy-Secr3t-pw", "smtp-Secr3t-pw"
    secrets = [S3_ENV["AWS_SECRET_ACCESS_KEY"], pg_secret, proxy_secret, smtp_secret]
    bucket = f"sw-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    entry = write_site(tmp_path / "sites", SiteSpec("secret.test", "secret", articles=3))
    registry = write_registry(tmp_path / "sites.yaml", [entry])
    # the machine's PostgreSQL trusts local connections: the password is carried, never checked
    index = pg_index_url.replace("postgres@", f"postgres:{pg_secret}@")
    rules = tmp_path / "alerts.yaml"
    rules.write_text(yaml.safe_dump({"rules": [{"name": "grain", "query": '"grain exports"',
                                                "recipients": ["desk@example.org"]}]}))
    with ReplayServer(tmp_path / "sites") as server:
        proxy = server.url.replace("http://", f"http://crawler:{proxy_secret}@")
        env = {**S3_ENV, "AWS_ENDPOINT_URL": moto_server, "STEPPEWATCH_ALERTS": str(rules),
               "STEPPEWATCH_SMTP_URL": f"smtp://ops:{smtp_secret}@127.0.0.1:{free_port()}"}
        result = crawl(registry, f"s3://{bucket}/news", index, proxy, env=env, extra=["LOG_LEVEL=DEBUG"])
        assert result.returncode == 0, result.stderr[-2000:]
        for key, value in {**env, "STEPPEWATCH_SITES": str(registry), "STEPPEWATCH_STORE": f"s3://{bucket}/news",
                           "STEPPEWATCH_INDEX_URL": index, "STEPPEWATCH_PROXY": proxy}.items():
            monkeypatch.setenv(key, value)
        from steppewatch.airflow_tasks import crawl_window, match_alerts, send_alerts

        xcom = crawl_window("secret", "2024-12-01T00:00:00+00:00", "2024-12-08T00:00:00+00:00")
        matched = match_alerts(result.summary["run_id"])  # the run that stored the articles
        # the SMTP server is not there: the attempts fail and are recorded, and the task is
        # retried (exit 3, unavailable) with a message that names the server, redacted
        from airflow.sdk.exceptions import AirflowException

        with pytest.raises(AirflowException, match="could not be delivered to smtp://ops:\\*\\*\\*@") as raised:
            send_alerts()
        sent = {"error": str(raised.value), "stdout": getattr(raised.value, "stdout", "")}
    import sqlalchemy as sa

    engine = sa.create_engine(index, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        errors = [row[0] for row in conn.exec_driver_sql("SELECT last_error FROM alert_outbox")]
    engine.dispose()
    assert errors and all(errors), (matched, sent)
    s3 = boto3.client("s3", endpoint_url=moto_server)
    manifests = [s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode()
                 for o in s3.list_objects_v2(Bucket=bucket, Prefix="news/runs/")["Contents"]]
    captured = "\n".join([result.stdout, result.stderr, json.dumps(xcom), json.dumps(matched), json.dumps(sent),
                          *errors, *manifests])
    assert manifests and "secret.test" in captured
    for secret in secrets:
        assert secret not in captured, f"a secret leaked: {secret}"


def test_page_content_cannot_steer_store_keys_or_paths(tmp_path: Path) -> None:
    from pipelines.extract import extract_page
    from steppewatch.archive import Archive
    from steppewatch.index import Index
    from steppewatch.layout import check_key
    from steppewatch.registry import adhoc_site
    from steppewatch.store import LocalStore

    site = adhoc_site("http://steer.test/")
    store = LocalStore(tmp_path / "store")
    index = Index(f"sqlite:///{tmp_path}/i.sqlite")
    for n, (canonical, title) in enumerate([("http://steer.test/../../../../etc/passwd", "../../etc/passwd"),
                                            ("http://steer.test/%2e%2e/%2e%2e/x", "..\\..\\windows"),
                                            ("/..;/..;/root/.ssh/id_rsa", "<x>/tmp/owned</x>")]):
        page = article_html("http://steer.test/ok/", title, "2024-12-03T10:00:00+00:00", 30 + n).replace(
            'href="http://steer.test/ok/"', f'href="{canonical}"')
        article = extract_page(page.encode(), f"http://steer.test/a{n}/", site, content_type="text/html")
        Archive(index, store).commit(article, page.encode())
    written = [p.relative_to(tmp_path / "store").as_posix() for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert len(written) == 6
    for key in written:
        assert re.fullmatch(r"(articles|raw)/site=adhoc/date=2024-12-03/[0-9a-f]{16}\.(json|html\.gz)", key), key
    for bad in ("../x", "articles/../../x", "/etc/passwd", "a/./b", "a\\b"):
        with pytest.raises(ValueError):
            check_key(bad)


def test_alert_mail_escapes_article_content_and_headers_cannot_be_injected(tmp_path: Path) -> None:
    from steppewatch.alerts.mail import SMTPMailer
    from tests.test_alerts import _article, _outbox

    outbox, store, index = _outbox(tmp_path, [{"name": "r", "query": "Astana", "recipients": ["a@example.org"]}])
    key = _article(store, index, "Astana\r\nBcc: victim@evil.example\r\nX-Injected: 1",
                   "Astana <img src=x onerror=alert(1)> and <a href='javascript:x'>link</a>.\nAstana again.")
    outbox.match_keys([key])
    sink = SMTPSink().start()
    try:
        assert outbox.send(SMTPMailer("127.0.0.1", sink.port))["immediate_sent"] == 1
    finally:
        sink.stop()
    (rcpts, raw), = sink.messages
    message = sink.parsed()[0]
    assert rcpts == ["a@example.org"] and message["Bcc"] is None and message["X-Injected"] is None
    html = message.get_body(("html",)).get_content()
    assert "<img" not in html and "&lt;img" in html and "<a href='javascript" not in html


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    from steppewatch.alerts.rules import RulesError, load_rules
    from steppewatch.registry import RegistryError, load_registry

    marker = tmp_path / "pwned"
    payload = f"!!python/object/apply:os.system ['touch {marker}']"
    (tmp_path / "sites.yaml").write_text(f"sites:\n  - {payload}\n")
    (tmp_path / "alerts.yaml").write_text(f"rules:\n  - {payload}\n")
    with pytest.raises(RegistryError):
        load_registry(tmp_path / "sites.yaml")
    with pytest.raises(RulesError):
        load_rules(tmp_path / "alerts.yaml")
    assert not marker.exists()
    assert yaml.safe_load("a: 1") == {"a": 1}


def test_xml_never_fetches_a_dtd_or_external_entity(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    from spiders.discovery import parse_feed, parse_sitemap

    (tmp_path / "sites").mkdir()
    with ReplayServer(tmp_path / "sites") as srv:
        dtd = srv.url + "/evil.dtd"
        body = (f"<?xml version='1.0'?><!DOCTYPE rss SYSTEM '{dtd}' [<!ENTITY e SYSTEM '{srv.url}/x'>]>"
                f"<rss><channel><item><title>&e;</title><link>http://x.test/a</link></item></channel></rss>").encode()
        parse_feed(body, "http://x.test/feed", ZoneInfo("UTC"))
        parse_sitemap(body.replace(b"rss", b"urlset"), "http://x.test/s.xml", ZoneInfo("UTC"))
        assert srv.hits == [], "the parser made a request"


HOSTILE_TITLES = [
    "=?utf-8?q?Astana=0D=0ABcc:_attacker@evil.example?=",  # an encoded word decoding to CR/LF (CVE-2024-6923)
    "Astana =?utf-8?b?DQpSZXBseS1UbzogeEBldmlsLmV4YW1wbGUNCg0KaGlqYWNrZWQgYm9keQ==?= talks",  # base64 form
    "Astana\r\nBcc: victim@evil.example\r\n\r\nhijacked body",
    "Astana\u2028Reply-To: x@evil.example\u0085X-Injected: 1\x00\x1b[31m",
    "Astana " + "=?utf-8?q?" + "A" * 2000 + "?=",
    "Astana " + "talks\u00a0" * 1500 + "Bcc:\tx@evil.example",  # very long, no encoded word, a folding tab
]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_hostile_titles_and_rule_names_cannot_make_headers_on_any_python(title: str) -> None:
    """Whatever the interpreter's patch level (the set-up requires CPython's 3.11.10 e-mail fix,
    this holds without it: pyenv's 3.11.7 here lacks it), the message has exactly its own
    headers and its body intact."""
    from email import message_from_bytes
    from email.policy import default

    from steppewatch.alerts.mail import StoryItem, digest_message, story_message

    item = StoryItem(title=title, url="http://site.test/a/", site="site", published=None, language="en",
                     snippet_text="Astana talks resume", snippet_html="<b>Astana</b> talks resume",
                     also=(("other", title, "http://other.test/b/"),))
    for message in (story_message(title, ["desk@example.org"], item, f"{title}/abc"),
                    digest_message(title, ["desk@example.org"], [item, item], "2024-12-03", f"{title}/d")):
        raw = message.as_bytes()
        parsed = message_from_bytes(raw, policy=default)
        assert sorted(parsed.keys()) == sorted(["Subject", "From", "To", "Date", "Message-ID", "X-Steppewatch-Key",
                                                "MIME-Version", "Content-Type"]), parsed.keys()
        for name in ("Subject", "X-Steppewatch-Key", "To"):
            value = str(parsed[name])
            assert "\r" not in value and "\n" not in value, value
            assert "=?" not in str(message[name]), "no encoded-word opener reaches the header as written"
        assert parsed["Bcc"] is None and parsed["Reply-To"] is None and parsed["X-Injected"] is None
        assert "Astana" in parsed["Subject"] or parsed["Subject"].startswith("[steppewatch]")
        body = parsed.get_body(("plain",)).get_content()
        assert "Astana talks resume" in body or "Astana" in body


_HEADERS_ON_THIS_PYTHON = """
import json, sys
from email import message_from_bytes
from email.policy import default
from steppewatch.alerts.mail import StoryItem, story_message
out = []
for title in json.load(sys.stdin):
    item = StoryItem(title=title, url="http://site.test/a/", site="site", published=None, language="en",
                     snippet_text="Astana talks resume", snippet_html="<b>Astana</b> talks resume")
    parsed = message_from_bytes(story_message(title, ["desk@example.org"], item, title + "/abc").as_bytes(),
                                policy=default)
    out.append(sorted(parsed.keys()))
print(json.dumps(out))
"""


def test_hostile_titles_make_no_headers_on_a_python_without_the_email_fix() -> None:
    """The same titles, mail built by an interpreter on this machine that lacks CPython's
    3.11.10 e-mail fix (pyenv's 3.11.7): still exactly the message's own headers."""
    import glob
    import os
    import shutil
    import subprocess

    from tests.test_crawl_fixtures import ROOT

    check = "import email.policy, sys; sys.exit(hasattr(email.policy.compat32, 'verify_generated_headers'))"
    found = [shutil.which("python3.11") or "", *glob.glob(os.path.expanduser("~/.pyenv/versions/3.11*/bin/python3.11"))]
    lacking = [p for p in dict.fromkeys(found) if p and subprocess.run([p, "-c", check]).returncode == 0]
    if not lacking:
        pytest.skip("no Python 3.11 without the e-mail fix on this machine")
    for python in lacking:
        proc = subprocess.run([python, "-I", "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
                               + _HEADERS_ON_THIS_PYTHON], input=json.dumps(HOSTILE_TITLES), capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr[-2000:]
        for keys in json.loads(proc.stdout):
            assert keys == sorted(["Subject", "From", "To", "Date", "Message-ID", "X-Steppewatch-Key",
                                   "MIME-Version", "Content-Type"]), (python, keys)


def test_message_ids_are_the_same_for_every_sending_of_one_alert() -> None:
    from steppewatch.alerts.mail import StoryItem, story_message

    item = StoryItem(title="Astana talks resume", url="http://site.test/a/", site="site", published=None,
                     language="en", snippet_text="Astana talks", snippet_html="Astana talks")
    first = story_message("Astana talks", ["a@example.org"], item, "Astana talks/0123456789abcdef")
    again = story_message("Astana talks", ["a@example.org"], item, "Astana talks/0123456789abcdef")
    other = story_message("Astana talks", ["a@example.org"], item, "Astana talks/fedcba9876543210")
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]
    assert first["Message-ID"].endswith("@steppewatch>")


def test_pasted_passwords_with_slash_and_at_are_never_printed(tmp_path: Path) -> None:
    """``alerts send`` with such an SMTP password crashed with a traceback quoting part of it, and a
    crawl printed an index password with "/" or "@" in its error message."""
    import os
    import subprocess
    import sys

    from tests.test_crawl_fixtures import ROOT

    secret = "pa/ss@w0rd:x"
    port = free_port()  # nothing listens there
    env = {**os.environ, "STEPPEWATCH_STORE": str(tmp_path / "store"),
           "STEPPEWATCH_INDEX_URL": f"sqlite:///{tmp_path}/i.sqlite",
           "STEPPEWATCH_SMTP_URL": f"smtp://desk:{secret}@127.0.0.1:{port}"}
    sent = subprocess.run([sys.executable, "-m", "steppewatch.cli", "alerts", "send"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert sent.returncode == 0 and "Traceback" not in sent.stderr, sent.stderr[-2000:]
    assert "pa/ss" not in sent.stdout + sent.stderr and "w0rd" not in sent.stdout + sent.stderr
    bad = subprocess.run([sys.executable, "-m", "steppewatch.cli", "alerts", "send"], cwd=ROOT, text=True,
                         env={**env, "STEPPEWATCH_SMTP_URL": f"smtp://desk:{secret}@127.0.0.1:notaport"},
                         capture_output=True, timeout=120)
    assert bad.returncode == 2 and "STEPPEWATCH_SMTP_URL" in bad.stderr and "Traceback" not in bad.stderr
    assert "pa/ss" not in bad.stderr and "w0rd" not in bad.stderr

    entry = write_site(tmp_path / "sites", SiteSpec("site.test", "site", articles=1))
    registry = write_registry(tmp_path / "sites.yaml", [entry])
    index = f"postgresql+psycopg://steppewatch:{secret}@127.0.0.1:{port}/sw"
    result = crawl(registry, str(tmp_path / "store"), index, None)
    assert result.returncode == 3 and "index postgresql+psycopg://steppewatch:***@127.0.0.1" in result.stderr
    assert "pa/ss" not in result.stdout + result.stderr and "w0rd" not in result.stdout + result.stderr


@pytest.mark.parametrize(("address", "public"), [
    ("93.184.216.34", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("100.64.0.1", False), ("169.254.169.254", False), ("0.0.0.0", False),
    ("::1", False), ("::", False), ("fe80::1", False), ("fec0::1", False), ("fd00::1", False), ("ff02::1", False),
    ("2001:db8::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:169.254.169.254", False), ("::ffff:93.184.216.34", True),  # IPv4-mapped
    ("::127.0.0.1", False), ("::10.0.0.1", False),  # IPv4-compatible (deprecated)
    ("64:ff9b::7f00:1", False), ("64:ff9b::a9fe:a9fe", False), ("64:ff9b::5db8:d822", True),  # NAT64
    ("64:ff9b:1::1", False),  # local-use NAT64
    ("2002:7f00:1::1", False), ("2002:a9fe:a9fe::1", False), ("2002:5db8:d822::1", True),  # 6to4
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
])
def test_every_ipv6_form_is_judged_by_what_it_reaches(address: str, public: bool) -> None:
    from steppewatch.netguard import refusal

    assert (refusal(address) is None) is public, refusal(address)


def test_sites_check_follows_no_redirect_to_the_machine_or_off_http(tmp_path: Path) -> None:
    """`sites --check` followed redirects to 169.254.169.254, 127.0.0.1 and ::1, and an ftp://
    redirect made a direct connection around the proxy: every hop now meets the crawl's guard."""
    import os
    import socket
    import subprocess
    import sys

    from tests.test_crawl_fixtures import ROOT

    listener = socket.socket()  # a port on this machine that must never be connected to
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    targets = {"meta": "http://169.254.169.254/latest/meta-data/", "loop": f"http://127.0.0.1:{port}/",
               "six": f"http://[::1]:{port}/", "ftp": f"ftp://127.0.0.1:{port}/x",
               "mapped": f"http://[::ffff:127.0.0.1]:{port}/"}
    entries = []
    for name, target in targets.items():
        host = f"{name}.test"
        spec = SiteSpec(host, f"{name}_site", articles=0, feed_route={"redirect": target, "status": 302})
        entries.append(write_site(tmp_path / "sites", spec))
    registry = write_registry(tmp_path / "sites.yaml", entries)
    with ReplayServer(tmp_path / "sites") as server:
        proc = subprocess.run([sys.executable, "-m", "steppewatch.cli", "sites", "--check", "--json"], cwd=ROOT,
                              env={**os.environ, "STEPPEWATCH_SITES": str(registry), "STEPPEWATCH_PROXY": server.url},
                              capture_output=True, text=True, timeout=120)
    try:
        connection = listener.accept()
    except TimeoutError:
        connection = None
    listener.close()
    assert connection is None, "something connected to this machine's port"
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    rows = json.loads(proc.stdout[proc.stdout.index("["):])
    assert len(rows) == len(targets)
    for row in rows:
        assert row["result"].startswith("refused"), row


def test_sites_takes_site_ids_and_refuses_unknown_and_look_alike_ones() -> None:
    """A rule, a `sites` call or a crawl naming `tеngrinews` (a Cyrillic е) reads as the real
    site; the check is letter for letter and says what the id reads as."""
    import os
    import subprocess
    import sys

    from steppewatch.errors import ExitCode
    from tests.test_crawl_fixtures import ROOT

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "steppewatch.cli", *args], capture_output=True, text=True,
                              env=dict(os.environ), cwd=ROOT, timeout=300)

    proc = run("sites", "tengrinews", "akipress_en")
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()[2:4]] == ["tengrinews", "akipress_en"]
    assert "2 of " in proc.stdout
    for args in (("sites", "t\u0435ngrinews"), ("sites", "--check", "t\u0435ngrinews"), ("sites", "tengrinew"),
                 ("crawl", "t\u0435ngrinews", "--since", "2024-12-01", "--until", "2024-12-02")):
        proc = run(*args)
        assert proc.returncode == ExitCode.USAGE and "Traceback" not in proc.stderr, proc.stderr
        assert "did you mean tengrinews" in proc.stderr, proc.stderr
        assert ("it mixes scripts: CYRILLIC, LATIN" in proc.stderr) == any("\u0435" in a for a in args), proc.stderr
        assert "probing" not in proc.stdout


def test_the_set_up_takes_only_a_python_with_the_email_header_fix(tmp_path: Path) -> None:
    """The interpreter the set-up made the venv from carries CPython's e-mail header fix
    (CVE-2024-6923), and `make` refuses one that does not, before making anything."""
    import email.policy
    import os
    import subprocess
    import sys

    from tests.test_crawl_fixtures import ROOT

    assert sys.version_info[:2] == (3, 11)
    assert hasattr(email.policy.compat32, "verify_generated_headers"), sys.version
    lacking = tmp_path / "python3.11"  # answers every question as an interpreter without the fix would
    lacking.write_text("#!/bin/sh\nexit 1\n")
    lacking.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS", "PYTHON"))}
    venv = tmp_path / "venv"
    for args in ([f"PYTHON={lacking}"], [f"PYTHON_CANDIDATES={lacking}"]):
        proc = subprocess.run(["make", "-C", str(ROOT), "install", f"VENV={venv}", *args], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0, proc.stdout
        assert "e-mail header fix (CVE-2024-6923)" in proc.stderr and "3.11.10" in proc.stderr, proc.stderr
        assert not venv.exists()


@pytest.mark.parametrize("setting", ["STEPPEWATCH_SMTP_URL", "STEPPEWATCH_INDEX_URL", "STEPPEWATCH_PROXY",
                                     "AWS_ENDPOINT_URL"])
def test_a_password_with_slash_at_colon_and_percent_is_never_printed_from_any_url_setting(
        tmp_path: Path, setting: str) -> None:
    """Each URL setting holding a pasted password, its server down: the command fails with a
    clear message (no traceback) and no piece of the password is printed."""
    import os
    import subprocess
    import sys

    from steppewatch.errors import ExitCode
    from tests.test_crawl_fixtures import ROOT

    secret = "p/a@s:s%2Fw0rd%"
    pieces = ("p/a", "s:s", "2Fw0rd", "w0rd")
    port = free_port()  # nothing listens there
    url = {"STEPPEWATCH_SMTP_URL": f"smtp://desk:{secret}@127.0.0.1:{port}",
           "STEPPEWATCH_INDEX_URL": f"postgresql+psycopg://sw:{secret}@127.0.0.1:{port}/sw",
           "STEPPEWATCH_PROXY": f"http://crawler:{secret}@127.0.0.1:{port}",
           "AWS_ENDPOINT_URL": f"http://minio:{secret}@127.0.0.1:{port}"}[setting]
    entry = write_site(tmp_path / "sites", SiteSpec("site.test", "site", articles=1))
    env = {**os.environ, **S3_ENV, "STEPPEWATCH_SITES": str(write_registry(tmp_path / "sites.yaml", [entry])),
           "STEPPEWATCH_STORE": str(tmp_path / "store"), "STEPPEWATCH_INDEX_URL": f"sqlite:///{tmp_path}/i.sqlite",
           setting: url}
    env.pop("AWS_ENDPOINT_URL_S3", None)
    if setting == "AWS_ENDPOINT_URL":
        env["STEPPEWATCH_STORE"] = "s3://steppewatch-test/articles"
    command = ["alerts", "send"] if setting == "STEPPEWATCH_SMTP_URL" else \
        ["crawl", "--all", "--since", "2024-12-01", "--until", "2024-12-08", "--set", "RETRY_TIMES=0",
         "--set", "DOWNLOAD_DELAY=0", "--set", "AUTOTHROTTLE_ENABLED=false"]
    proc = subprocess.run([sys.executable, "-m", "steppewatch.cli", *command], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not [p for p in pieces if p in output], output[-3000:]
    # and each failed where it should: the proxy (its host parsed through the password) was
    # reached and refused the connection; the store and the index are unavailable (exit 3)
    expected = {"STEPPEWATCH_SMTP_URL": ExitCode.OK, "STEPPEWATCH_INDEX_URL": ExitCode.UNAVAILABLE,
                "STEPPEWATCH_PROXY": ExitCode.SOURCES_FAILED, "AWS_ENDPOINT_URL": ExitCode.UNAVAILABLE}[setting]
    assert proc.returncode == expected, output[-3000:]
    if setting == "STEPPEWATCH_PROXY":
        assert "failed: connection_refused" in output, output[-3000:]
