"""Alert e-mails end to end: a real SMTP server (aiosmtpd) receives what the outbox sends."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from steppewatch.alerts.mail import DirectoryMailer, SMTPMailer
from steppewatch.alerts.outbox import Outbox
from steppewatch.alerts.rules import load_rules
from steppewatch.archive import Archive
from steppewatch.errors import ExitCode
from steppewatch.index import Index
from steppewatch.store import LocalStore
from tests.conftest import SMTPSink, free_port
from tests.test_crawl_fixtures import FIXTURES, ROOT, crawl

# An independent oracle for "reports on the Astana talks": plain regexes over the stored text.
ORACLE = re.compile(
    r"(astana|nur-sultan) (peace )?(talks|process|format)|астанинск\w* (переговор|процесс|формат)"
    r"|переговор\w* в (астане|нур-султане)", re.IGNORECASE)


@pytest.fixture(scope="module")
def server():
    from steppewatch.replay import ReplayServer

    with ReplayServer(FIXTURES / "sites") as srv:
        yield srv


def cli(*args: str, env: dict[str, str], cwd: Path = ROOT, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "steppewatch.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, STEPPEWATCH_SITES=str(FIXTURES / "sites.yaml"), **env), cwd=cwd,
                          timeout=600)
    assert proc.returncode == code, proc.stderr[-3000:]
    return proc


def expected_stories(store: Path) -> set[str]:
    records = {r["id"]: r for r in (json.loads(p.read_text()) for p in store.glob("articles/*/*/*.json"))}
    stories = {r["story_id"] for r in records.values() if ORACLE.search(r["title"] + "\n" + r["text"])}
    for alias in (json.loads(p.read_text()) for p in store.glob("aliases/*/*/*.json")):
        if ORACLE.search(alias["title"] + "\n" + records[alias["alias_of"]]["text"]):
            stories.add(alias["story_id"])
    return stories


def astana_messages(sink: SMTPSink) -> list:
    return [m for m in sink.parsed() if m["Subject"].startswith("[steppewatch] Astana talks:")]


def test_demo_sends_one_message_per_story_then_nothing(smtp: SMTPSink, tmp_path: Path) -> None:
    env = {"STEPPEWATCH_STORE": str(tmp_path / "demo"), "STEPPEWATCH_INDEX_URL": f"sqlite:///{tmp_path}/i.db",
           "STEPPEWATCH_SMTP_URL": smtp.url}
    cli("demo", env=env, cwd=tmp_path)
    messages = astana_messages(smtp)
    stories = expected_stories(tmp_path / "demo")
    assert len(stories) >= 2 and len(messages) == len(stories)
    assert len({m["X-Steppewatch-Key"] for m in messages}) == len(messages)
    assert all(rcpts == ["analysts@example.org"] for rcpts, _ in smtp.messages
               if b"Astana talks" in _)
    before = len(smtp.messages)
    cli("demo", env=env, cwd=tmp_path)
    assert len(smtp.messages) == before, "a second run alerts nobody again"


def test_message_content(server, smtp: SMTPSink, tmp_path: Path) -> None:
    run = crawl(server, tmp_path / "store", index=f"sqlite:///{tmp_path}/i.db")
    env = {"STEPPEWATCH_STORE": str(tmp_path / "store"), "STEPPEWATCH_INDEX_URL": f"sqlite:///{tmp_path}/i.db",
           "STEPPEWATCH_SMTP_URL": smtp.url}
    cli("alerts", "match", "--run", run.summary["run_id"], env=env)
    cli("alerts", "send", env=env)
    messages = astana_messages(smtp)
    russian = next(m for m in messages if "Астанинского процесса" in m["Subject"] or "Астанинский" in m["Subject"])
    assert "\n" not in russian["Subject"] and russian["To"] == "analysts@example.org"
    text = russian.get_body(("plain",)).get_content()
    rich = russian.get_body(("html",)).get_content()
    assert "**Астанинского процесса**" in text or "**Астанинский формат**" in text
    assert "<mark>" in rich and "</mark>" in rich
    assert "Also reported by" in text and "Also reported by" in rich
    head, also = text.split("Also reported by")
    assert {"kazinfo", "dala_news"} == {site for site in ("kazinfo", "dala_news") if site in head + also}
    assert ("kazinfo" in head) != ("kazinfo" in also)
    english = next(m for m in messages if "New Fighting in Syria" in m["Subject"])
    assert "http://steppe-times.test/new-fighting-in-syria-throws-astana-talks-off-track/" in english.get_body(
        ("plain",)).get_content()
    # the sidebar headline on every other steppe-times page never made those pages match
    sidebar_pages = [m for m in messages if "steppe-times.test" in m.get_body(("plain",)).get_content()
                     and "Syria" not in m["Subject"] and not ORACLE.search(m.get_body(("plain",)).get_content())]
    assert sidebar_pages == []


def test_smtp_down_then_back_sends_each_alert_once(server, tmp_path: Path) -> None:
    index_url = f"sqlite:///{tmp_path}/i.db"
    run = crawl(server, tmp_path / "store", index=index_url)
    port = free_port()
    env = {"STEPPEWATCH_STORE": str(tmp_path / "store"), "STEPPEWATCH_INDEX_URL": index_url,
           "STEPPEWATCH_SMTP_URL": f"smtp://127.0.0.1:{port}"}
    cli("alerts", "match", "--run", run.summary["run_id"], env=env)
    failed = cli("alerts", "send", env=env, code=ExitCode.UNAVAILABLE)  # retried by Airflow; nothing lost
    assert f"could not be delivered to smtp://127.0.0.1:{port}" in failed.stderr and "Traceback" not in failed.stderr
    down = json.loads(failed.stdout)
    assert down.get("immediate_failed", 0) >= 2 and down["outbox"].get("pending", 0) >= 2
    assert "sent" not in down["outbox"]
    sink = SMTPSink(port).start()
    try:
        up = json.loads(cli("alerts", "send", env=env).stdout)
        again = json.loads(cli("alerts", "send", env=env).stdout)
    finally:
        sink.stop()
    assert up["immediate_sent"] == down["immediate_failed"] == len(astana_messages(sink))
    assert again.get("immediate_sent", 0) == 0 and len(astana_messages(sink)) == up["immediate_sent"]


def _outbox(tmp_path: Path, rules: list[dict]) -> tuple[Outbox, LocalStore, Index]:
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"rules": rules}, allow_unicode=True), "utf-8")
    store = LocalStore(tmp_path / "store")
    index = Index(f"sqlite:///{tmp_path}/i.db")
    return Outbox(index, store, load_rules(path)), store, index


TOPICS = ["railway freight tariffs wagons", "wheat harvest export quotas", "uranium mining contracts",
          "metro construction tunnel", "banking regulation deposits", "football league stadium"]


def _distinct(n: int) -> str:
    return f"Astana news about {TOPICS[n]}.\n" + " ".join(f"{TOPICS[n].split()[i % 3]}{i}" for i in range(40))


def _article(store: LocalStore, index: Index, title: str, text: str, site: str = "steppe_times",
             published: str = "2024-12-03T10:00:00+05:00") -> str:
    from steppewatch.models import Article, article_id, content_hash

    url = f"http://{site.replace('_', '-')}.test/{abs(hash(title))}/"
    art = Article(id=article_id(url), url=url, canonical_url=url, site=site, title=title, text=text,
                  published=published, date_source="page", language="en", fetched_at=datetime.now(UTC).isoformat(),
                  http_status=200, content_hash=content_hash(text))
    return Archive(index, store).commit(art, b"<html></html>").keys[1]


def test_headers_cannot_be_injected_and_html_is_escaped(smtp: SMTPSink, tmp_path: Path) -> None:
    outbox, store, index = _outbox(tmp_path, [{"name": "r", "query": "Astana", "recipients": ["a@example.org"]}])
    key = _article(store, index, "Astana\r\nBcc: victim@evil.example\r\n<b>Қазақ</b> «title»",
                   "Talks in Astana <script>alert(1)</script> went on & on.\nSecond paragraph about Astana.")
    outbox.match_keys([key])
    assert outbox.send(SMTPMailer("127.0.0.1", smtp.port))["immediate_sent"] == 1
    (rcpts, raw), = smtp.messages
    message = smtp.parsed()[0]
    assert rcpts == ["a@example.org"] and message["Bcc"] is None
    assert not [line for line in raw.splitlines() if line.lower().startswith(b"bcc:")], raw.decode()
    assert message["Subject"] == "[steppewatch] r: Astana Bcc: victim@evil.example <b>Қазақ</b> «title»"
    rich = message.get_body(("html",)).get_content()
    assert "<script>" not in rich and "&lt;script&gt;" in rich and "&lt;b&gt;Қазақ&lt;/b&gt;" in rich


def test_refused_recipient_does_not_block_the_others(smtp: SMTPSink, tmp_path: Path) -> None:
    smtp.refuse.add("gone@example.org")
    outbox, store, index = _outbox(tmp_path, [{"name": "r", "query": "Astana",
                                               "recipients": ["gone@example.org", "ok@example.org"]}])
    outbox.match_keys([_article(store, index, "Astana news", "Astana hosted a forum.\nAnd Astana again.")])
    assert outbox.send(SMTPMailer("127.0.0.1", smtp.port))["immediate_sent"] == 1
    assert [r for r, _ in smtp.messages] == [["ok@example.org"]]
    assert outbox.status() == {"sent": 1}


def test_backfill_records_without_sending_or_sends_one_summary(tmp_path: Path) -> None:
    outbox, store, index = _outbox(tmp_path, [{"name": "r", "query": "Astana", "recipients": ["a@example.org"]}])
    keys = [_article(store, index, f"Astana story {n}", _distinct(n), published=f"2024-12-0{n}T10:00:00Z")
            for n in (1, 2, 3)]
    outbox.match_keys(keys[:1], backfill=True)
    mailer = DirectoryMailer(tmp_path / "mail")
    assert outbox.send(mailer) == {} and outbox.status() == {"held": 1}
    outbox.match_keys(keys, backfill=True, summary=True)  # the held story stays held: one row per story
    counts = outbox.send(mailer)
    assert counts["summary_sent"] == 1 and counts["summary_stories"] == 2
    (eml,) = (tmp_path / "mail").glob("*.eml")
    assert b"2 stories, 2024-12-02 \xe2\x80\xa6 2024-12-03" in eml.read_bytes()


def test_backfill_summary_batch_waits_for_its_release(tmp_path: Path) -> None:
    """Days of one backfill collect under its batch: another sender mails nothing half-done."""
    outbox, store, index = _outbox(tmp_path, [{"name": "r", "query": "Astana", "recipients": ["a@example.org"]}])
    keys = [_article(store, index, f"Astana story {n}", _distinct(n), published=f"2024-12-0{n}T10:00:00Z")
            for n in (1, 2, 3, 4)]
    mailer = DirectoryMailer(tmp_path / "mail")
    outbox.match_keys(keys[:2], backfill=True, batch="backfill/run-a")
    outbox.match_keys(keys[3:], backfill=True, batch="backfill/run-b")
    assert outbox.send(mailer) == {} and outbox.status() == {"collecting": 3}
    outbox.match_keys(keys[2:3], backfill=True, batch="backfill/run-a")  # the last day of run a
    assert outbox.release("backfill/run-a") == 3
    counts = outbox.send(mailer)
    assert counts == {"summary_sent": 1, "summary_stories": 3}
    assert outbox.status() == {"sent": 3, "collecting": 1}
    assert outbox.release("backfill/run-a") == 0 and outbox.send(mailer) == {}
    (eml,) = (tmp_path / "mail").glob("*.eml")
    assert b"3 stories, 2024-12-01 \xe2\x80\xa6 2024-12-03" in eml.read_bytes()


def test_digest_one_message_per_period_newest_first(tmp_path: Path) -> None:
    outbox, store, index = _outbox(tmp_path, [{"name": "d", "query": "Astana", "recipients": ["a@example.org"],
                                               "mode": "digest", "schedule": "0 8 * * *",
                                               "timezone": "Asia/Almaty"}])
    keys = [_article(store, index, f"Astana item {n}", _distinct(n), published=f"2024-12-0{n}T10:00:00Z")
            for n in (1, 2, 3)]
    outbox.match_keys(keys)
    mailer = DirectoryMailer(tmp_path / "mail")
    assert outbox.send(mailer, now=datetime.now(UTC) - timedelta(days=2)) == {}  # matched after that period
    counts = outbox.send(mailer, now=datetime.now(UTC) + timedelta(days=1))
    assert counts == {"digest_sent": 1, "digest_stories": 3}
    from email import message_from_bytes, policy

    (eml,) = (tmp_path / "mail").glob("*.eml")
    body = message_from_bytes(eml.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
    assert body.index("Astana item 3") < body.index("Astana item 2") < body.index("Astana item 1")


def test_an_update_that_newly_matches_alerts_once(tmp_path: Path) -> None:
    from dataclasses import replace

    from steppewatch.models import Article, article_id, content_hash

    outbox, store, index = _outbox(tmp_path, [{"name": "r", "query": "uranium", "recipients": ["a@example.org"]}])
    url = "http://steppe-times.test/edited/"
    text = "Kazakhstan reported its grain harvest.\nExports rose this year."
    art = Article(id=article_id(url), url=url, canonical_url=url, site="steppe_times", title="Harvest", text=text,
                  published="2024-12-03T10:00:00Z", date_source="page", language="en",
                  fetched_at=datetime.now(UTC).isoformat(), http_status=200, content_hash=content_hash(text))
    key = Archive(index, store).commit(art, b"v1").keys[1]
    assert outbox.match_keys([key]).get("new_matches", 0) == 0
    edited = text + "\nUpdate: uranium output also rose."
    result = Archive(index, store).commit(replace(art, text=edited, content_hash=content_hash(edited)), b"v2")
    assert outbox.match_keys([k for k in result.keys if k.startswith("articles/")])["new_matches"] == 1
    assert outbox.match_keys([key]) == {"examined": 1, "already_matched": 1}  # seen again: no second row
    assert outbox.send(DirectoryMailer(tmp_path / "mail")) == {"immediate_sent": 1}
    assert outbox.send(DirectoryMailer(tmp_path / "mail")) == {}


def test_preview_lists_matches_and_sends_nothing(server, tmp_path: Path) -> None:
    index_url = f"sqlite:///{tmp_path}/i.db"
    crawl(server, tmp_path / "store", index=index_url)
    env = {"STEPPEWATCH_STORE": str(tmp_path / "store"), "STEPPEWATCH_INDEX_URL": index_url,
           "STEPPEWATCH_OUTBOX_DIR": str(tmp_path / "outbox")}
    out = cli("alerts", "preview", "Astana talks", "--since", "2024-12-01", "--until", "2024-12-08", env=env).stdout
    assert "New Fighting in Syria Throws Astana Talks Off Track" in out and "**" in out
    assert "4 matching records" in out  # two Russian reports, the Syria piece, the Trump analysis
    assert not (tmp_path / "outbox").exists()
    assert Outbox(Index(index_url), LocalStore(tmp_path / "store"), load_rules()).status() == {}


def test_rows_of_one_story_send_one_message_and_an_unindexed_record_none(smtp: SMTPSink, tmp_path: Path) -> None:
    # two rows for one rule whose articles are in one story by the time they are sent (two
    # copies matched before the index joined them), and a record object whose index commit
    # never landed: one message, for the story, naming a record that is there
    import sqlalchemy as sa

    from steppewatch.alerts.outbox import alert_outbox
    from steppewatch.db import articles

    outbox, store, index = _outbox(tmp_path, [{"name": "r", "query": "Astana", "recipients": ["a@example.org"]}])
    first = _article(store, index, "Astana talks resume", _distinct(0))
    second = _article(store, index, "Astana metro opens", _distinct(3), site="kazinfo")
    outbox.match_keys([first, second])
    with index.engine.begin() as conn:  # the index later joins the two into the first's story
        (story,) = conn.execute(sa.select(articles.c.story_id).where(articles.c.key == first)).one()
        conn.execute(articles.update().where(articles.c.key == second).values(story_id=story))
    orphan = json.loads(store.get(second))
    orphan.update(id="0123456789abcdef", story_id="0123456789abcdef")
    store.put("articles/site=kazinfo/date=2024-12-03/0123456789abcdef.json", json.dumps(orphan).encode(),
              "application/json")
    assert outbox.match_keys(["articles/site=kazinfo/date=2024-12-03/0123456789abcdef.json"]) == {"not_indexed": 1}
    counts = outbox.send(SMTPMailer("127.0.0.1", smtp.port))
    assert (counts.get("immediate_sent"), counts.get("immediate_merged")) == (1, 1)
    assert [m["Subject"] for m in smtp.parsed()] == ["[steppewatch] r: Astana talks resume"]
    assert outbox.send(SMTPMailer("127.0.0.1", smtp.port)) == {} and len(smtp.messages) == 1
    with index.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(alert_outbox.c.status)).scalars()) == ["merged", "sent"]


def test_the_headline_is_the_story_member_that_matches_best(smtp: SMTPSink, tmp_path: Path) -> None:
    # rows for a story of three copies, the earliest copy's first: the message is headlined
    # by the copy with the rule's term in its title, though another mentions it more often
    # and the matched one is earlier; "also reported by" names the two others, not the headline
    import sqlalchemy as sa

    from steppewatch.db import articles

    outbox, store, index = _outbox(tmp_path, [{"name": "r", "query": "Kazatomprom", "recipients": ["a@example.org"]}])
    first = _article(store, index, "Uranium market weekly", _distinct(2) + "\nKazatomprom was mentioned once.",
                     published="2024-12-03T08:00:00+05:00")
    best = _article(store, index, "Kazatomprom cuts its 2025 forecast", _distinct(1) + "\nKazatomprom said so.",
                    site="kazinfo", published="2024-12-03T09:00:00+05:00")
    many = _article(store, index, "Mining roundup", _distinct(4) + "\nKazatomprom, Kazatomprom and Kazatomprom.",
                    site="dala_news", published="2024-12-03T10:00:00+05:00")
    with index.engine.begin() as conn:
        (story,) = conn.execute(sa.select(articles.c.story_id).where(articles.c.key == first)).one()
        conn.execute(articles.update().where(articles.c.key.in_([best, many])).values(story_id=story))
    outbox.match_keys([first, best, many])  # three rows, matched before the copies were joined
    counts = outbox.send(SMTPMailer("127.0.0.1", smtp.port))
    assert (counts["immediate_sent"], counts["immediate_merged"]) == (1, 2)
    (message,) = smtp.parsed()
    assert message["Subject"] == "[steppewatch] r: Kazatomprom cuts its 2025 forecast"
    text = message.get_body(("plain",)).get_content()
    head, also = text.split("Also reported by")
    assert "**Kazatomprom** said so" in head  # the headline copy's own snippet
    assert "Uranium market weekly" in also and "Mining roundup" in also
    assert "Kazatomprom cuts its 2025 forecast" not in also


def test_without_a_title_hit_the_most_occurrences_then_the_earliest_headline(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from steppewatch.alerts.outbox import alert_outbox
    from steppewatch.db import articles

    outbox, store, index = _outbox(tmp_path, [{"name": "r", "query": "Kazatomprom", "recipients": ["a@example.org"]}])
    keys = [_article(store, index, title, _distinct(n) + "\n" + mention, site=site, published=published)
            for n, (title, mention, site, published) in enumerate([
                ("Late roundup", "Kazatomprom twice: Kazatomprom.", "steppe_times", "2024-12-03T12:00:00+05:00"),
                ("Early roundup", "Kazatomprom twice: Kazatomprom.", "kazinfo", "2024-12-03T07:00:00+05:00"),
                ("Earliest note", "Kazatomprom once.", "dala_news", "2024-12-03T06:00:00+05:00")])]
    with index.engine.begin() as conn:
        (story,) = conn.execute(sa.select(articles.c.story_id).where(articles.c.key == keys[0])).one()
        conn.execute(articles.update().where(articles.c.key.in_(keys[1:])).values(story_id=story))
    outbox.match_keys([keys[0]])
    with index.engine.connect() as conn:
        row = conn.execute(sa.select(alert_outbox)).one()
    item = outbox.story_item(row)  # the message item, without a mail server
    assert item.title == "Early roundup"
    assert {title for _site, title, _url in item.also} == {"Late roundup", "Earliest note"}
