"""The storage suite, run against both backends: a local directory and S3 (moto server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from steppewatch.layout import article_key, check_key, raw_key
from steppewatch.store import LocalStore, S3Store, Store, open_store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    else:
        bucket = request.getfixturevalue("bucket")
        yield open_store(f"s3://{bucket}/some/prefix")


def test_put_get_list_exists(store: Store) -> None:
    key = article_key("steppe_times", "2024-12-03", "0123456789abcdef")
    assert not store.exists(key)
    store.put(key, b'{"a": 1}', "application/json", metadata={"site": "steppe_times"})
    store.put(raw_key("steppe_times", "2024-12-03", "0123456789abcdef"), b"\x1f\x8b...", "text/html",
              content_encoding="gzip")
    assert store.exists(key) and store.get(key) == b'{"a": 1}'
    assert store.list("articles/") == [key]
    assert len(store.list()) == 2
    store.put(key, b'{"a": 2}', "application/json")
    assert store.get(key) == b'{"a": 2}'
    with pytest.raises(FileNotFoundError):
        store.get("articles/site=x/date=2024-12-03/missing.json")


@pytest.mark.parametrize("bad", ["../etc/passwd", "articles/../../x", "/abs/key", "a//b", "a/./b", "a b", "a\nb"])
def test_unsafe_keys_are_refused(store: Store, bad: str) -> None:
    with pytest.raises(ValueError, match="unsafe store key"):
        store.put(bad, b"x", "text/plain")
    with pytest.raises(ValueError):
        check_key(bad)


def test_s3_objects_carry_type_encoding_and_metadata(bucket: str, moto_server: str) -> None:
    store = S3Store(f"s3://{bucket}/p")
    store.put("raw/site=a/date=2024-12-03/x.html.gz", b"\x1f\x8bdata", "text/html", content_encoding="gzip",
              metadata={"site": "a", "published": "2024-12-03T10:00:00+05:00", "content-hash": "ab" * 32,
                        "title": "Астана"})
    head = boto3.client("s3", endpoint_url=moto_server).head_object(Bucket=bucket, Key="p/raw/site=a/date=2024-12-03/x.html.gz")
    assert head["ContentType"] == "text/html" and head["ContentEncoding"] == "gzip"
    assert head["Metadata"]["site"] == "a" and head["Metadata"]["content-hash"] == "ab" * 32
    assert head["Metadata"]["title"].isascii()


def test_s3_client_uses_adaptive_retries_and_standard_endpoint(bucket: str, moto_server: str) -> None:
    store = S3Store(f"s3://{bucket}")
    assert store.client.meta.config.retries["mode"] == "adaptive"
    assert store.client.meta.endpoint_url == moto_server  # from AWS_ENDPOINT_URL


def test_bad_store_uri() -> None:
    with pytest.raises(ValueError, match="s3://bucket"):
        S3Store("s3://")

