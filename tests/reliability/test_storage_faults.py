"""The object store failing for real: moto's S3 server not there at the start, stopped in
the middle of a run and started again (moto keeps its objects across a restart in one
process), briefly or for the rest of the run. A rerun of the window completes, and the
store then holds every article exactly once, in agreement with the index.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from steppewatch.replay import ReplayServer
from tests.conftest import S3_ENV, free_port
from tests.reliability.helpers import SiteSpec, assert_store_and_index_agree, crawl, write_registry, write_site

ARTICLES = 12


class Moto:
    """moto's S3 server on a fixed port, to stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self):  # noqa: ANN201
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"])

    def count(self, bucket: str) -> int:
        return self.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    entry = write_site(tmp_path / "sites", SiteSpec("s3faults.test", "s3faults", articles=ARTICLES))
    registry = write_registry(tmp_path / "sites.yaml", [entry])
    server = ReplayServer(tmp_path / "sites")
    server.start()
    moto = Moto()
    moto.start()
    bucket = f"sw-{uuid.uuid4().hex[:10]}"
    moto.client().create_bucket(Bucket=bucket)
    env = {**S3_ENV, "AWS_ENDPOINT_URL": moto.endpoint}
    for key, value in env.items():  # for this process's look at the store
        monkeypatch.setenv(key, value)
    try:
        yield {"registry": registry, "proxy": server.url, "moto": moto, "bucket": bucket, "env": env,
               "store": f"s3://{bucket}/news", "index": f"sqlite:///{tmp_path}/index.sqlite", "server": server}
    finally:
        moto.stop()
        server.stop()


def stop_after(moto: Moto, bucket: str, objects: int, down_for: float | None) -> threading.Thread:
    """Stop the S3 server once the bucket holds ``objects`` objects; start it after ``down_for`` s (None: never)."""

    def watch() -> None:
        while moto.count(bucket) < objects:
            time.sleep(0.05)
        moto.stop()
        if down_for is not None:
            time.sleep(down_for)
            moto.start()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_s3_unreachable_at_the_start_fails_cleanly_then_a_rerun_completes(setup: dict) -> None:
    moto: Moto = setup["moto"]
    moto.stop()
    first = crawl(setup["registry"], setup["store"], setup["index"], setup["proxy"], env=setup["env"])
    assert first.returncode == 3, first.stderr[-2000:]
    assert f"store s3://{setup['bucket']}/news unavailable" in first.stderr
    assert setup["server"].count("s3faults.test", r"^/news/") == 0, "nothing fetched that could not be kept"
    moto.start()
    second = crawl(setup["registry"], setup["store"], setup["index"], setup["proxy"], env=setup["env"])
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.summary["totals"]["stored"] == ARTICLES
    assert assert_store_and_index_agree(setup["store"], setup["index"])["records"] == ARTICLES


def test_s3_down_for_a_moment_mid_run_is_retried_and_the_run_completes(setup: dict) -> None:
    watcher = stop_after(setup["moto"], setup["bucket"], objects=6, down_for=1.5)
    result = crawl(setup["registry"], setup["store"], setup["index"], setup["proxy"], env=setup["env"],
                   extra=["STORE_RETRY_BACKOFF=0.5"])
    watcher.join(timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    site = result.summary["sites"]["s3faults"]
    assert site["store_errors"].get("store_unavailable", 0) >= 1, site["store_errors"]
    assert site["stored"] == ARTICLES and site["not_stored"] == 0
    assert assert_store_and_index_agree(setup["store"], setup["index"])["records"] == ARTICLES


def test_s3_down_for_the_rest_of_the_run_then_a_rerun_stores_each_article_once(setup: dict) -> None:
    moto: Moto = setup["moto"]
    watcher = stop_after(moto, setup["bucket"], objects=6, down_for=None)
    first = crawl(setup["registry"], setup["store"], setup["index"], setup["proxy"], env=setup["env"],
                  extra=["STORE_RETRY_BACKOFF=0.1", "STORE_MAX_CONSECUTIVE_FAILURES=3"])
    watcher.join(timeout=60)
    assert first.returncode == 3, first.stderr[-3000:]
    assert "could not be stored" in first.stderr and "run the same window again" in first.stderr
    site = first.summary["sites"]["s3faults"]
    assert site["not_stored"] >= 3 and site["stored"] < ARTICLES
    moto.start()
    kept_before = assert_store_and_index_agree(setup["store"], setup["index"], orphan_raw_pages=True)["records"]
    assert kept_before == site["stored"], "what the first run reports stored is what store and index hold"
    second = crawl(setup["registry"], setup["store"], setup["index"], setup["proxy"], env=setup["env"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.summary["totals"]["stored"] == ARTICLES - kept_before
    assert assert_store_and_index_agree(setup["store"], setup["index"])["records"] == ARTICLES
