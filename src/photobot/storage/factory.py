"""Choose the storage backend from `PHOTOBOT_STORAGE_URL`.

- `file:///abs/path` (or `file://relative/path`): `LocalStorage`, served under `/media/…`.
- `s3://bucket/optional/prefix?endpoint_url=…&region=…&access_key=…&secret_key=…`: `S3Storage`
  (credentials otherwise come from the usual AWS environment variables).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from photobot.signing import MediaSigner
from photobot.storage.base import Storage, StorageError
from photobot.storage.local import LocalStorage


def open_storage(url: str, *, public_base_url: str, secrets: list[str]) -> Storage:
    parts = urlsplit(url)
    if parts.scheme == "file":
        raw = unquote(parts.netloc + parts.path)
        return LocalStorage(Path(raw), base_url=public_base_url, signer=MediaSigner(secrets))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StorageError("s3 storage URL needs a bucket: s3://bucket")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        from photobot.storage.s3 import S3Storage  # aioboto3 costs ~1 s to import; only S3 deployments pay it

        return S3Storage(
            parts.netloc,
            endpoint_url=query.get("endpoint_url"),
            region=query.get("region"),
            prefix=parts.path,
            access_key=query.get("access_key"),
            secret_key=query.get("secret_key"),
        )
    raise StorageError(f"unsupported storage URL scheme: {parts.scheme!r}")
