"""The command line: sites table, sites --check over HTTP and offline, extract (one page, batches), demo."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from steppewatch.errors import ExitCode
from steppewatch.replay import ReplayServer

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steppewatch.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), cwd=cwd, timeout=600)


def test_sites_lists_the_registry_as_a_table() -> None:
    proc = run("sites")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split()[:3] == ["id", "country", "lang"]
    assert "tengrinews" in proc.stdout and "akipress_en" in proc.stdout


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sites_check_offline_reports_unreachable_per_url() -> None:
    # A proxy on a closed local port stands in for "no network" without touching the internet.
    proc = run("sites", "--check", "--json", "--timeout", "2",
               env={"STEPPEWATCH_PROXY": f"http://127.0.0.1:{_closed_port()}"})
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout[proc.stdout.index("["):])
    assert len(results) >= 40
    assert all(r["result"].startswith("unreachable") for r in results)


def test_sites_check_probes_sources_over_http() -> None:
    with ReplayServer(FIXTURES / "sites") as server:
        proc = run("sites", "--check", "--json",
                   env={"STEPPEWATCH_SITES": str(FIXTURES / "sites.yaml"), "STEPPEWATCH_PROXY": server.url})
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout[proc.stdout.index("["):])
    ok = [r for r in results if r["result"].startswith("ok")]
    html_feeds = [r for r in results if r["result"] == "HTML page where a feed was expected"]
    assert ok and all(r["status"] == 200 and r["items"] > 0 for r in ok)
    assert html_feeds and all(r["status"] == 200 and "text/html" in r["content_type"] for r in html_feeds)


def test_extract_json_prints_the_record(tmp_path: Path) -> None:
    page = next((FIXTURES / "sites").glob("*/**/*.html"))
    proc = run("extract", str(page), "--json")
    assert proc.returncode in (ExitCode.OK, ExitCode.REJECTED), proc.stderr
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "url" in record and record["file"] == str(page)
    missing = tmp_path / "nope.html"
    proc = run("extract", str(missing))
    assert proc.returncode == ExitCode.USAGE and str(missing) in proc.stderr


# A page as a Russian-language news site in the region would serve it, written by hand.
CANONICAL = "https://stepnye-vesti.kz/ru/news/ekonomika/urozhaj-zerna-2024"
SENTENCE = "Министерство сельского хозяйства подвело итоги уборочной кампании."
ARTICLE = f"""<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<title>Урожай зерна в 2024 году превысил прогноз | Степные вести</title>
<meta property="og:type" content="article">
<meta property="og:title" content="Урожай зерна в 2024 году превысил прогноз">
<meta property="article:published_time" content="2024-12-03T09:15:00+05:00">
<link rel="canonical" href="{CANONICAL}">
</head>
<body>
<nav><a href="/ru/">Главная</a> <a href="/ru/news/">Новости</a> <a href="/ru/sport/">Спорт</a></nav>
<article>
<h1>Урожай зерна в 2024 году превысил прогноз</h1>
<p>{SENTENCE} По данным ведомства, аграрии страны намолотили более 26 миллионов тонн
зерна в чистом весе, что на четыре миллиона тонн больше, чем предполагал весенний прогноз.</p>
<p>Наибольший прирост показали северные области: Костанайская, Акмолинская и Северо-Казахстанская.
Там средняя урожайность пшеницы составила почти 15 центнеров с гектара, несмотря на
затяжные дожди в сентябре, которые задержали уборку на две недели.</p>
<p>Экспортёры ожидают, что рекордный урожай позволит нарастить поставки в Центральную Азию,
Афганистан и Китай. Вместе с тем фермеры жалуются на нехватку элеваторных мощностей и рост
тарифов на железнодорожные перевозки, из-за которых часть зерна остаётся на открытых токах.</p>
<p>В министерстве заявили, что в следующем году планируют субсидировать строительство новых
хранилищ и пересмотреть порядок закупа зерна в государственный резервный фонд.</p>
</article>
<footer>© Степные вести, 2024</footer>
</body>
</html>
"""
EMPTY = "<html><body></body></html>"


def test_extract_a_directory_prints_one_json_line_per_page_in_sorted_order(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    (pages / "2024" / "12").mkdir(parents=True)
    (pages / "2024" / "12" / "urozhaj.html").write_text(ARTICLE, encoding="utf-8")
    (pages / "2024" / "urozhaj-copy.html.gz").write_bytes(gzip.compress(ARTICLE.encode("utf-8")))
    (pages / "empty.htm").write_text(EMPTY, encoding="utf-8")
    (pages / "broken.html.gz").write_bytes(b"this was never gzipped")
    (pages / "notes.txt").write_text("not a page", encoding="utf-8")
    proc = run("extract", str(pages))
    assert proc.returncode == ExitCode.REJECTED, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in lines] == [str(pages / "2024" / "12" / "urozhaj.html"),
                                          str(pages / "2024" / "urozhaj-copy.html.gz"),
                                          str(pages / "broken.html.gz"),
                                          str(pages / "empty.htm")]
    article, copy, broken, empty = lines
    for record in (article, copy):
        assert record["canonical_url"] == CANONICAL
        assert record["title"] == "Урожай зерна в 2024 году превысил прогноз"
        assert SENTENCE in record["text"] and "нехватку элеваторных мощностей" in record["text"]
        assert "rejected" not in record and "error" not in record
    assert broken["error"].startswith("cannot read: ") and "rejected" not in broken
    assert empty["rejected"] == "no_content" and empty["detail"] and "text" not in empty


def test_extract_a_batch_of_articles_exits_0(tmp_path: Path) -> None:
    plain, gzipped = tmp_path / "a.html", tmp_path / "b.html.gz"
    plain.write_text(ARTICLE, encoding="utf-8")
    gzipped.write_bytes(gzip.compress(ARTICLE.encode("utf-8")))
    proc = run("extract", str(plain), str(gzipped), "--site", "tengrinews")
    assert proc.returncode == ExitCode.OK, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in lines] == [str(plain), str(gzipped)]
    assert all(r["canonical_url"] == CANONICAL and SENTENCE in r["text"] for r in lines)


def test_extract_one_file_prints_readable_text_and_exits_rejected_for_a_non_article(tmp_path: Path) -> None:
    page, empty = tmp_path / "page.html", tmp_path / "empty.html"
    page.write_text(ARTICLE, encoding="utf-8")
    empty.write_text(EMPTY, encoding="utf-8")
    proc = run("extract", str(page))
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert f"canonical_url: {CANONICAL}" in proc.stdout.splitlines() and SENTENCE in proc.stdout
    proc = run("extract", str(empty), "--url", "https://stepnye-vesti.kz/ru/news/1")
    assert proc.returncode == ExitCode.REJECTED, proc.stderr
    assert proc.stdout.splitlines()[:2] == ["url: https://stepnye-vesti.kz/ru/news/1", "rejected: no_content"]


def test_extract_url_is_for_one_file_only(tmp_path: Path) -> None:
    for name in ("a.html", "b.html"):
        (tmp_path / name).write_text(ARTICLE, encoding="utf-8")
    proc = run("extract", str(tmp_path / "a.html"), str(tmp_path / "b.html"), "--url", CANONICAL)
    assert proc.returncode == ExitCode.USAGE and proc.stdout == ""
    assert "--url" in proc.stderr and "single file" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("extract", str(tmp_path), "--url", CANONICAL)
    assert proc.returncode == ExitCode.USAGE and "--url" in proc.stderr and str(tmp_path) in proc.stderr


def test_extract_a_missing_path_or_an_empty_directory_is_a_usage_error(tmp_path: Path) -> None:
    page, missing, empty_dir = tmp_path / "a.html", tmp_path / "nope", tmp_path / "empty"
    page.write_text(ARTICLE, encoding="utf-8")
    empty_dir.mkdir()
    (empty_dir / "readme.txt").write_text("no pages here", encoding="utf-8")
    for paths, named in (([page, missing], missing), ([empty_dir], empty_dir)):
        proc = run("extract", *map(str, paths))
        assert proc.returncode == ExitCode.USAGE, proc.stderr
        assert str(named) in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stdout == ""  # checked before any page is extracted


def test_demo_stores_articles_from_every_sample_site(tmp_path: Path) -> None:
    store = tmp_path / "demo"
    proc = run("demo", env={"STEPPEWATCH_STORE": str(store), "STEPPEWATCH_INDEX_URL": f"sqlite:///{tmp_path}/i.db"},
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(p.read_text("utf-8")) for p in store.glob("articles/site=*/date=*/*.json")]
    assert len(records) >= 10
    assert len({r["site"] for r in records}) >= 4
    assert len(list(store.glob("raw/site=*/date=*/*.html.gz"))) == len(records)
    assert "stored" in proc.stdout and str(store) in proc.stdout


def test_crawl_exits_non_zero_when_every_source_failed(tmp_path: Path) -> None:
    proc = run("crawl", "--all", "--since", "2024-12-01", "--until", "2024-12-02", "--store", str(tmp_path / "s"),
               "--json", "--set", "RETRY_TIMES=0", "--set", "LOG_LEVEL=ERROR",
               env={"STEPPEWATCH_SITES": str(FIXTURES / "sites.yaml"),
                    "STEPPEWATCH_INDEX_URL": f"sqlite:///{tmp_path}/i.db",
                    "STEPPEWATCH_PROXY": f"http://127.0.0.1:{_closed_port()}"})
    assert proc.returncode == ExitCode.SOURCES_FAILED, proc.stderr[-2000:]
    assert "every source of every site failed" in proc.stderr and "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    assert sorted(summary["totals"]["sites_all_sources_failed"]) == sorted(summary["sites"])
    for site in summary["sites"].values():
        assert all(src["error"] for src in site["sources"])
