"""A Kazakh outlet's Russian and English editions of one article, crawled by two sites'
runs through the real CLI and the replay server, alert on the shipped "Astana talks" rule
once: one message, whose "also reported by" names the other edition. An unrelated Russian
page of the outlet whose template points hreflang at the English home page and at the
English edition stays a story of its own (and its own message)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from steppewatch.replay import ReplayServer
from tests.conftest import SMTPSink
from tests.reliability.helpers import ROOT, crawl, write_registry

RU = "/ru/news/politics/2024-12-03/peregovory-v-astane-78412/"
EN = "/news/politics/astana-talks-resume-on-ceasefire-monitoring-20741/"
TRAP = "/ru/news/economy/2024-12-03/zerno-eksport-78420/"


def page(lang: str, title: str, published: str, paragraphs: list[str], head: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title} | Qazpost</title>'
            f'<meta property="og:type" content="article"><meta property="og:title" content="{title}">'
            f'<meta property="article:published_time" content="{published}">{head}</head><body>'
            f'<header><a href="/">Qazpost</a> <a href="/ru/">RU</a> <a href="//en.qazpost.test/">EN</a></header>'
            f'<main><article><h1>{title}</h1><time>{published[:10]}</time>{body}</article></main>'
            f"<footer>© Qazpost 2024</footer></body></html>")


RU_TEXT = [
    "В столице Казахстана в среду возобновились переговоры в Астане по сирийскому урегулированию, сообщили в "
    "министерстве иностранных дел республики.",
    "Делегации гарантов обсуждают механизм наблюдения за прекращением огня, обмен задержанными и доступ "
    "гуманитарных конвоев в северные провинции.",
    "По словам официального представителя министерства, итоговое заявление планируется согласовать в четверг "
    "после консультаций глав делегаций.",
]
EN_TEXT = [
    "The Astana talks on Syria resumed in the Kazakh capital on Wednesday, the republic's foreign ministry said.",
    "Delegations of the guarantor states are discussing how ceasefire monitoring would work, an exchange of "
    "detainees and access for humanitarian convoys to the northern provinces.",
    "A ministry spokesman said a final statement was expected to be agreed on Thursday after consultations "
    "between the heads of delegations.",
]
TRAP_TEXT = [
    "Экспорт зерна из Казахстана за одиннадцать месяцев вырос почти на треть, сообщило министерство сельского "
    "хозяйства; основным покупателем остается Узбекистан.",
    "Аграрии жалуются на нехватку вагонов-зерновозов на станциях Костанайской и Северо-Казахстанской областей.",
    "Эксперты напоминают, что тема транзита обсуждалась и на полях встречи, где шли переговоры в Астане, "
    "однако решений по тарифам принято не было.",
]


def write_outlet(root: Path) -> list[dict]:
    ru_host, en_host = root / "qazpost.test", root / "en.qazpost.test"
    ru_url, en_url = f"http://qazpost.test{RU}", f"http://en.qazpost.test{EN}"
    files = {
        # the Russian page names the English edition with the other scheme, the English one
        # the Russian edition protocol-relative; x-default is the home page; dates are local (UTC+5)
        ru_host / RU.strip("/") / "index.html": page("ru", "Переговоры в Астане возобновились", "2024-12-03T10:00:00", RU_TEXT,
            f'<link rel="canonical" href="{ru_url}"><link rel="alternate" hreflang="ru" href="{RU}">'
            f'<link rel="alternate" hreflang="en" href="https://en.qazpost.test{EN}">'
            f'<link rel="alternate" hreflang="x-default" href="/">'),
        en_host / EN.strip("/") / "index.html": page("en", "Astana talks resume on ceasefire monitoring",
                                                     "2024-12-03T11:30:00", EN_TEXT,
            f'<link rel="canonical" href="{en_url}"><link rel="alternate" hreflang="RU" href="//qazpost.test{RU}">'
            f'<link rel="alternate" hreflang="en" href="{en_url}">'),
        # an older template: English alternate at the English home page, Kazakh at a fixed page
        ru_host / TRAP.strip("/") / "index.html": page("ru", "Экспорт зерна вырос на треть", "2024-12-03T12:15:00",
                                                       TRAP_TEXT,
            f'<link rel="alternate" hreflang="en" href="//en.qazpost.test/">'
            f'<link rel="alternate" hreflang="en-US" href="https://en.qazpost.test{EN}">'),
    }
    for path, html in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, "utf-8")

    def feed(host: Path, base: str, items: list[tuple[str, str, str]]) -> None:
        entries = "".join(f"<item><title>{t}</title><link>{base}{p}</link><pubDate>{d}</pubDate></item>"
                          for p, t, d in items)
        (host / "robots.txt").write_text("User-agent: *\nAllow: /\n")
        (host / "rss.xml").write_text(f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
                                      f"<title>Qazpost</title>{entries}</channel></rss>", "utf-8")

    feed(ru_host, "http://qazpost.test", [(RU, "Переговоры в Астане", "Tue, 03 Dec 2024 10:00:00 +0500"),
                                           (TRAP, "Экспорт зерна", "Tue, 03 Dec 2024 12:15:00 +0500")])
    feed(en_host, "http://en.qazpost.test", [(EN, "Astana talks resume", "Tue, 03 Dec 2024 11:30:00 +0500")])
    common = {"name": "Qazpost", "country": "KZ", "allowed_domains": ["qazpost.test"], "timezone": "Asia/Almaty"}
    return [{"id": "qazpost_ru", "languages": ["ru"], "feeds": [{"url": "http://qazpost.test/rss.xml"}], **common},
            {"id": "qazpost_en", "languages": ["en"], "feeds": [{"url": "http://en.qazpost.test/rss.xml"}], **common}]


def cli(*args: str, env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "steppewatch.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, **env), cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}


def test_two_editions_crawled_by_two_runs_send_one_message(smtp: SMTPSink, tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "sites.yaml", write_outlet(tmp_path / "sites"))
    store, index = str(tmp_path / "store"), f"sqlite:///{tmp_path}/index.sqlite"
    env = {"STEPPEWATCH_SITES": str(registry), "STEPPEWATCH_STORE": store, "STEPPEWATCH_INDEX_URL": index,
           "STEPPEWATCH_SMTP_URL": smtp.url, "STEPPEWATCH_ALERTS": str(ROOT / "config" / "alerts.yaml")}
    with ReplayServer(tmp_path / "sites") as server:
        for site in ("qazpost_en", "qazpost_ru"):  # the English edition first, in a run of its own
            run = crawl(registry, store, index, server.url, site)
            assert run.returncode == 0 and run.summary, run.stderr[-3000:]
            assert run.summary["sites"][site]["stored"] >= 1, run.summary["sites"][site]
            cli("alerts", "match", "--run", run.summary["run_id"], env=env)
    cli("alerts", "send", env=env)
    messages = [m for m in smtp.parsed() if m["Subject"].startswith("[steppewatch] Astana talks:")]
    editions = [m for m in messages if "Экспорт" not in m["Subject"]]
    assert len(editions) == 1, [m["Subject"] for m in messages]
    text = editions[0].get_body(("plain",)).get_content()
    head, _, also = text.partition("Also reported by")
    # the message is headlined by the edition that matches the rule best; the other is "also"
    en, ru = f"http://en.qazpost.test{EN}", f"http://qazpost.test{RU}"
    assert (en in head and ru in also and "qazpost_ru" in also) or (ru in head and en in also and "qazpost_en" in also)
    assert f"http://qazpost.test{TRAP}" not in text
    assert len([m for m in messages if "Экспорт" in m["Subject"]]) == 1  # the trap: a story of its own
    records = [json.loads(p.read_text("utf-8")) for p in (tmp_path / "store").glob("articles/*/*/*.json")]
    by_url = {r["canonical_url"]: r for r in records}
    assert by_url[f"http://qazpost.test{RU}"]["editions"] == {f"https://en.qazpost.test{EN}": "en"}
    assert by_url[f"http://qazpost.test{TRAP}"]["story_id"] != by_url[f"http://qazpost.test{RU}"]["story_id"]
    cli("alerts", "send", env=env)
    assert len([m for m in smtp.parsed() if m["Subject"].startswith("[steppewatch] Astana talks:")]) == len(messages)
