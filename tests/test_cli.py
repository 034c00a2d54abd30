"""The command line: sites table, sites --check over HTTP and offline, extract, demo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

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
    assert proc.returncode in (0, 3), proc.stderr
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "url" in record
    missing = tmp_path / "nope.html"
    proc = run("extract", str(missing))
    assert proc.returncode == 2 and str(missing) in proc.stderr


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
    assert proc.returncode == 1, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert sorted(summary["totals"]["sites_all_sources_failed"]) == sorted(summary["sites"])
    for site in summary["sites"].values():
        assert all(src["error"] for src in site["sources"])
