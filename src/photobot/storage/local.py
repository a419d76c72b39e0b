"""Local-directory storage, served by the app itself under signed, expiring URLs.

The URL is `{public_base_url}/media/{key}?exp=…&sig=…`; the signature (itsdangerous, keyed by the service
secret) covers the key and the expiry, so a link can neither be altered nor outlive its time.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlencode

from photobot.signing import MediaSigner
from photobot.storage.base import (
    CHUNK_SIZE,
    ObjectNotFound,
    StorageError,
    StoredObject,
    content_type_for,
    validate_key,
)


class LocalStorage:
    def __init__(self, root: Path, *, base_url: str, signer: MediaSigner) -> None:
        self.root = root.resolve()
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError("invalid storage key")
        return path

    async def put_file(
        self, key: str, path: Path, content_type: str | None = None, *, move: bool = False
    ) -> StoredObject:
        dest = self.path_for(key)
        if move:
            size = self._rename(path, dest)
            if size is None:  # another filesystem: a copy, in a thread
                size = await asyncio.to_thread(self._copy_atomic, path, dest)
                path.unlink(missing_ok=True)
        else:
            size = await asyncio.to_thread(self._copy_atomic, path, dest)
        return StoredObject(key, size, content_type or content_type_for(key))

    @staticmethod
    def _rename(src: Path, dest: Path) -> int | None:
        """Rename into place (atomic, no copy); None across filesystems.

        On the event loop, not in a thread: a rename and a chmod are metadata calls costing microseconds (the
        upload itself was written on the loop, chunk by chunk), while the hop to a worker thread and back cost
        more than the calls themselves on every submission (bench/submit_roundtrips.py)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(src, 0o644)  # temp files are 0600; stored media are as readable as copied ones
        try:
            os.replace(src, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            return None
        return dest.stat().st_size

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject:
        dest = self.path_for(key)

        def write() -> None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)

        await asyncio.to_thread(write)
        return StoredObject(key, len(data), content_type or content_type_for(key))

    @staticmethod
    def _copy_atomic(src: Path, dest: Path) -> int:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return dest.stat().st_size

    async def iter_chunks(self, key: str) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
                yield chunk
        finally:
            handle.close()

    async def download_to(self, key: str, path: Path) -> None:
        src = self.path_for(key)
        if not src.exists():
            raise ObjectNotFound(key)
        await asyncio.to_thread(shutil.copyfile, src, path)

    async def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    async def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    async def url(self, key: str, expires_s: int, *, filename: str | None = None) -> str:
        validate_key(key)
        expires_at = int(time.time()) + expires_s
        query = {"exp": expires_at, "sig": self.signer.sign(self.signer.subject(key, filename or None), expires_at)}
        if filename:
            query["filename"] = filename
        return f"{self.base_url}/media/{quote(key)}?{urlencode(query)}"

    def verify(self, key: str, expires_at: int, signature: str, *, filename: str | None = None) -> bool:
        """A link's signature, over its key and its download name (when it has one)."""
        return self.signer.verify(self.signer.subject(key, filename), expires_at, signature)

    async def check(self) -> None:
        probe = self.root / ".readyz"
        try:
            await asyncio.to_thread(probe.write_bytes, b"ok")
        except OSError as exc:
            raise StorageError(f"media directory not writable: {exc.strerror}") from None

    async def close(self) -> None:
        return None
