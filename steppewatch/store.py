"""Object storage backends: a local directory tree (the embedded default) and S3.

Both take the keys of ``steppewatch.layout`` (checked there: page content can never steer
a key or a path) and behave alike. The local backend is the embedded default; writes go to a temporary file that is
renamed into place, so a killed run never leaves a half-written object; the file, its
new directories and the rename are fsynced before ``put`` returns (the index commits next).

Each store has an ``identity``, what an index is bound to (``Index.bind_store``): two
spellings of one store give the same identity (a local path resolved to an absolute one; an
S3 bucket and prefix with the endpoint boto3 is pointed at, credentials left out), so an index
is never taken for another store's and never refused its own.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from steppewatch.errors import StoreUnavailable
from steppewatch.layout import check_key
from steppewatch.redaction import redact, redact_text, split_credentials

_SEQUENCE = itertools.count()


class Store(Protocol):
    uri: str

    @property
    def identity(self) -> str: ...

    def put(self, key: str, data: bytes, content_type: str, content_encoding: str | None = None,
            metadata: dict[str, str] | None = None) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str = "") -> list[str]: ...

    def check(self) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class LocalStore:
    """A directory tree laid out like the object store."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @property
    def uri(self) -> str:
        return str(self.root)

    @property
    def identity(self) -> str:
        """The absolute path, symbolic links resolved: ``data/store`` run from two working
        directories is two stores, a link to a directory is that directory."""
        return str(self.root.resolve())

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"{self.root} is not writable")

    def put(self, key: str, data: bytes, content_type: str, content_encoding: str | None = None,
            metadata: dict[str, str] | None = None) -> None:
        path = self._path(key)
        created = []  # new directories: their entries in their parents must reach the disk too
        parent = path.parent
        while not parent.is_dir() and parent != parent.parent:
            created.append(parent)
            parent = parent.parent
        path.parent.mkdir(parents=True, exist_ok=True)
        for directory in reversed(created):
            _fsync_dir(directory.parent)
        # a name no other writer uses (process, thread, sequence): no retry loop as in mkstemp
        tmp = path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{next(_SEQUENCE)}{path.suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                # the data on disk before the name points at it: after a power loss a rename
                # that reached the disk must not show an empty or partial file
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        # and the rename itself: the index commits after put() returns, so the object must
        # be durable by then (a directory entry lives in the directory's own blocks)
        _fsync_dir(path.parent)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self.root
        if not base.exists():
            return []
        keys = [p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()]
        return sorted(k for k in keys if k.startswith(prefix) and not Path(k).name.startswith(".tmp-"))


class S3Store:
    """An S3 bucket (and key prefix) through boto3, for AWS, MinIO or any S3 API.

    Credentials come from boto3's standard chain; ``AWS_ENDPOINT_URL_S3`` or
    ``AWS_ENDPOINT_URL`` point it at another S3-compatible service. Retries use
    botocore's adaptive mode (client-side rate limiting on throttling).
    """

    def __init__(self, uri: str, client: Any | None = None) -> None:
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3://bucket[/prefix] URI: {redact(uri)}")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.uri = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self._client = client

    @property
    def identity(self) -> str:
        """``s3://bucket/prefix``, and ``at <endpoint>`` when one is configured: a bucket of the
        same name on another service (MinIO, another region's test server) is another store."""
        endpoint = s3_endpoint()
        return f"{self.uri} at {endpoint}" if endpoint else self.uri

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config as BotoConfig

            self._client = boto3.client(
                "s3",
                # a few quick attempts here; the store pipeline retries a whole commit with
                # longer pauses, and gives up on the run if the store stays down
                config=BotoConfig(retries={"mode": "adaptive", "max_attempts": 4},
                                  connect_timeout=5, read_timeout=30),
            )
        return self._client

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str, content_encoding: str | None = None,
            metadata: dict[str, str] | None = None) -> None:
        extra: dict[str, Any] = {"ContentType": content_type, "Metadata": _ascii_meta(metadata or {})}
        if content_encoding:
            extra["ContentEncoding"] = content_encoding
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(f"{self.uri}/{key}") from exc

    def head(self, key: str) -> dict[str, str] | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))["Metadata"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str = "") -> list[str]:
        if ".." in prefix:
            raise ValueError(f"unsafe store prefix {prefix!r}")
        full = (self.prefix + "/" if self.prefix else "") + prefix
        paginator = self.client.get_paginator("list_objects_v2")
        keys: list[str] = []
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)


def s3_endpoint() -> str | None:
    """The S3 endpoint boto3 takes from the environment (``AWS_ENDPOINT_URL_S3`` first, as boto3
    does; read by ``config.boto3_s3_endpoint``), normalised: no credentials, scheme and host
    lower-case, no default port or trailing /."""
    from steppewatch.config import boto3_s3_endpoint

    raw = boto3_s3_endpoint()
    if not raw:
        return None
    head, _userinfo, rest = split_credentials(raw.strip())
    parts = urlsplit(head + rest)
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a number: kept as written, the client will refuse it
        port = None
        host = parts.netloc.rsplit("@", 1)[-1].lower()
    scheme = parts.scheme.lower()
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path.rstrip('/')}"


def _ascii_meta(metadata: dict[str, str]) -> dict[str, str]:
    # S3 user metadata travels in HTTP headers: keep it ASCII.
    return {k: v.encode("ascii", "backslashreplace").decode("ascii") for k, v in metadata.items()}


def check_store(store: Store) -> None:
    """Raise StoreUnavailable (naming the store, never its credentials) unless it can be written."""
    try:
        store.check()
    except Exception as exc:  # what exactly failed is in the message
        raise StoreUnavailable(f"store {redact(store.uri)} unavailable: {redact_text(str(exc))}") from None


def open_store(uri: str | os.PathLike[str]) -> Store:
    uri = str(uri)
    if uri.startswith("s3://"):
        return S3Store(uri)
    return LocalStore(Path(uri.removeprefix("file://")))
