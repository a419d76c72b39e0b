"""The storage interface every backend implements.

Photos move through files on disk, never whole in memory: callers stream a download into a temporary file,
check it, then hand the path to `put_file`; readers stream with `iter_chunks` or copy with `download_to`.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHUNK_SIZE = 256 * 1024
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)*$")


class StorageError(Exception):
    """A storage operation failed (missing object, unreachable backend); messages hold no secrets."""


class ObjectNotFound(StorageError):
    pass


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    content_type: str


def validate_key(key: str) -> str:
    """Keys are relative paths of safe segments: no `..`, no leading slash, no empty segment."""
    if len(key) > 300 or not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise StorageError("invalid storage key")
    return key


def content_type_for(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class Storage(Protocol):
    """What the service needs from an object store."""

    async def put_file(
        self, key: str, path: Path, content_type: str | None = None, *, move: bool = False
    ) -> StoredObject:
        """Store the file at `path` under `key` (overwriting: keys are deterministic, so retries are safe).

        `move`: the file is a temp file the caller is done with; the store takes it (local storage renames it into
        place without a copy when it is on the same filesystem) and `path` is gone afterwards.
        """
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject: ...

    def iter_chunks(self, key: str) -> AsyncIterator[bytes]:
        """Stream the object in chunks of about CHUNK_SIZE."""
        ...

    async def download_to(self, key: str, path: Path) -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Delete the object; deleting a missing object is not an error."""
        ...

    async def url(self, key: str, expires_s: int, *, filename: str | None = None) -> str:
        """A time-limited URL anyone holding it can GET (signed by us, or presigned by S3)."""
        ...

    async def check(self) -> None:
        """Raise StorageError when the backend is not usable (readiness)."""
        ...

    async def close(self) -> None: ...
