"""Object storage for article records and raw pages, at deterministic keys.

Keys are the same for every backend:
``articles/site=<id>/date=<YYYY-MM-DD>/<article_id>.json`` and
``raw/site=<id>/date=<YYYY-MM-DD>/<article_id>.html.gz``. Site ids are validated slugs
and article ids are hex digests, so page content can never steer a key or a path.
The local backend is the embedded default; writes go to a temporary file that is
renamed into place, so a killed run never leaves a half-written object.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_KEY_RE = re.compile(r"^[A-Za-z0-9=_.\-]+(/[A-Za-z0-9=_.\-]+)*$")


class Store(Protocol):
    uri: str

    def put(self, key: str, data: bytes, content_type: str, content_encoding: str | None = None,
            metadata: dict[str, str] | None = None) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> list[str]: ...


def check_key(key: str) -> str:
    if not _KEY_RE.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"unsafe store key {key!r}")
    return key


def article_key(site: str, day: str, article_id: str) -> str:
    return check_key(f"articles/site={site}/date={day}/{article_id}.json")


def raw_key(site: str, day: str, article_id: str) -> str:
    return check_key(f"raw/site={site}/date={day}/{article_id}.html.gz")


@dataclass
class LocalStore:
    """A directory tree laid out like the object store."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @property
    def uri(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str, content_encoding: str | None = None,
            metadata: dict[str, str] | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

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


def open_store(uri: str | os.PathLike[str]) -> Store:
    uri = str(uri)
    if uri.startswith("s3://"):
        raise ValueError(f"{uri}: S3 stores are not supported yet")
    return LocalStore(Path(uri.removeprefix("file://")))
