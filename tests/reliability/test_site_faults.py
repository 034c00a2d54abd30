"""Sites that misbehave, for real over HTTP: one crawl of a site whose feed lists good
articles beside every kind of broken response, and of a second feed that answers 503.

The crawl must complete (exit 0), count each fault by kind for the source that listed
the page, retry what is worth retrying, and store the good articles and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steppewatch.replay import ReplayServer
from tests.reliability.helpers import (
    Crawl,
    SiteSpec,
    article_html,
    assert_store_and_index_agree,
    crawl,
    local_records,
    source,
    write_registry,
    write_site,
)

MIB = 1024 * 1024
HOST = "faulty.test"
FAULTS: dict[str, dict[str, Any]] = {
    "/slow/": {"fault": "hang", "seconds": 6},
    "/reset/": {"fault": "reset"},
    "/storm/": {"status": 503},
    "/busy/": {"sequence": [{"status": 429, "headers": {"Retry-After": "1"}}, {"file": "busy/index.html"}]},
    "/cut/": {"fault": "truncate", "file": "cut/index.html"},
    "/loop-a/": {"redirect": "/loop-b/", "status": 302},  # a cycle: the duplicate filter ends it
    "/hop/0/": {"redirect": "/hop/1/", "status": 302},  # a chain longer than REDIRECT_MAX_TIMES
    "/huge/": {"fault": "big", "size": 12 * MIB},
    "/flood/": {"fault": "big_stream", "size": 12 * MIB},
    "/bomb/": {"fault": "gzip_bomb", "size": 256 * MIB},
    "/noise/": {"fault": "binary", "size": 20000},
    "/empty/": {"body": ""},
}
UNLISTED = {"/loop-b/": {"redirect": "/loop-a/", "status": 302},
            **{f"/hop/{n}/": {"redirect": f"/hop/{n + 1}/", "status": 302} for n in range(1, 12)}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Crawl, Path, str, ReplayServer]]:
    base = tmp_path_factory.mktemp("faulty")
    files = {
        "busy/index.html": article_html(f"http://{HOST}/busy/", "A page behind a 429", "2024-12-03T09:00:00+00:00", 7),
        "cut/index.html": article_html(f"http://{HOST}/cut/", "A page cut short", "2024-12-03T09:00:00+00:00", 8),
    }
    spec = SiteSpec(HOST, "faulty", articles=5, extra=FAULTS, files=files, unlisted=UNLISTED,
                    registry_extra={"feeds": [{"url": f"http://{HOST}/feed.xml"},
                                              {"url": f"http://{HOST}/storm-feed.xml"}]})
    entry = write_site(base / "sites", spec)
    routes_file = base / "sites" / HOST / "_site.yaml"
    import yaml

    conf = yaml.safe_load(routes_file.read_text())
    conf["routes"]["/storm-feed.xml"] = {"status": 503}
    routes_file.write_text(yaml.safe_dump(conf))
    registry = write_registry(base / "sites.yaml", [entry])
    server = ReplayServer(base / "sites")
    server.start()
    index = f"sqlite:///{base}/index.sqlite"
    try:
        result = crawl(registry, str(base / "store"), index, server.url,
                       extra=["DOWNLOAD_TIMEOUT=2", "RETRY_TIMES=2", "RETRY_BACKOFF_MAX=5"])
        yield result, base / "store", index, server
    finally:
        server.stop()


def feed(run: tuple[Crawl, Path, str, ReplayServer]) -> dict[str, Any]:
    result = run[0]
    assert result.summary is not None, result.stderr[-3000:]
    return source(result.summary, "faulty", "/feed.xml")


def test_the_crawl_completes_and_stores_the_good_articles_only(run) -> None:  # noqa: ANN001
    result, store, index, _ = run
    assert result.returncode == 0, result.stderr[-3000:]
    stored = {r["canonical_url"] for r in local_records(store)}
    good = {f"http://{HOST}/news/{n}/" for n in range(5)} | {f"http://{HOST}/busy/"}
    assert stored == good
    for record in local_records(store):
        assert len(record["text"]) > 300 and "\x00" not in record["text"] and record["title"]
    assert assert_store_and_index_agree(str(store), index) == {"records": 6, "aliases": 0}


@pytest.mark.parametrize(("path", "kind"), [
    ("/slow/", "timeout"),
    ("/reset/", "connection_lost"),
    ("/storm/", "http_503"),
    ("/cut/", "truncated"),
    ("/hop/0/", "redirect_loop"),
    ("/huge/", "too_large"),
    ("/bomb/", "too_large"),
])
def test_each_fault_is_counted_by_kind_for_its_source(run, path: str, kind: str) -> None:  # noqa: ANN001
    kinds = feed(run)["error_kinds"]
    assert kinds.get(kind, 0) >= 1, (path, json.dumps(kinds))
    summary = run[0].summary
    assert summary["sites"]["faulty"]["errors"].get(kind, 0) >= 1


def test_a_body_without_length_over_the_limit_is_cut_off(run) -> None:  # noqa: ANN001
    kinds = feed(run)["error_kinds"]
    assert kinds.get("too_large", 0) == 2, json.dumps(kinds)  # /huge/ (Content-Length over), /bomb/ (inflated)
    assert kinds.get("cancelled", 0) == 1, json.dumps(kinds)  # /flood/: streamed past the limit, cut off
    _, _, _, server = run
    assert server.count(HOST, r"^/flood/$") == 1, "a page over the limit is not fetched again"


def test_binary_served_as_html_and_an_empty_200_are_rejected(run) -> None:  # noqa: ANN001
    assert feed(run)["rejected_kinds"] == {"no_content": 1, "not_html": 1}


def test_server_errors_are_retried_with_backoff_then_given_up(run) -> None:  # noqa: ANN001
    _, _, _, server = run
    assert server.count(HOST, r"^/storm/$") == 3  # the first try and RETRY_TIMES=2
    assert server.count(HOST, r"^/storm-feed\.xml$") == 3
    storm_feed = source(run[0].summary, "faulty", "/storm-feed.xml")
    assert storm_feed["error"] == "http_503" and storm_feed["status"] == 503
    assert not run[0].summary["sites"]["faulty"]["all_sources_failed"], "one failing source is not a failing site"


def test_429_with_retry_after_is_honoured_and_the_page_stored(run) -> None:  # noqa: ANN001
    result, store, _, server = run
    assert server.count(HOST, r"^/busy/$") == 2
    assert f"http://{HOST}/busy/" in {r["canonical_url"] for r in local_records(store)}
    assert json.loads(result.stdout)["sites"]["faulty"]["retries"].get("retry_after_honoured") == 1


def test_redirect_loops_stop(run) -> None:  # noqa: ANN001
    _, _, _, server = run
    assert server.count(HOST, r"^/hop/\d+/$") == 6  # REDIRECT_MAX_TIMES is 5: the request and five redirects
    assert server.count(HOST, r"^/loop-[ab]/$") == 2  # back at /loop-a/: a request already made is not repeated
    assert feed(run)["stored"] == 6
