"""S3-compatible storage (AWS S3, Cloudflare R2, MinIO) through aioboto3, with presigned GET URLs.

One client is opened for the process and reused; uploads go from a file on disk with boto's managed
transfer (multipart above its threshold), so memory stays bounded whatever the photo size.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from photobot.files import open_fresh
from photobot.storage.base import (
    CHUNK_SIZE,
    ObjectNotFound,
    StorageError,
    StoredObject,
    content_type_for,
    validate_key,
)


class S3Storage:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        prefix: str = "",
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._endpoint_url = endpoint_url
        self._region = region
        self._session = aioboto3.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._lock = asyncio.Lock()

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def _get_client(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    config = Config(
                        signature_version="s3v4",
                        connect_timeout=5,
                        read_timeout=30,
                        retries={"max_attempts": 3, "mode": "standard"},
                        s3={"addressing_style": "path"},
                    )
                    self._client = await self._stack.enter_async_context(
                        self._session.client("s3", endpoint_url=self._endpoint_url, config=config)
                    )
        return self._client

    async def put_file(
        self, key: str, path: Path, content_type: str | None = None, *, move: bool = False
    ) -> StoredObject:
        client = await self._get_client()
        ctype = content_type or content_type_for(key)
        size = path.stat().st_size
        try:
            await client.upload_file(str(path), self.bucket, self._key(key), ExtraArgs={"ContentType": ctype})
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"upload failed: {type(exc).__name__}") from None
        if move:
            path.unlink(missing_ok=True)
        return StoredObject(key, size, ctype)

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject:
        client = await self._get_client()
        ctype = content_type or content_type_for(key)
        try:
            await client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=ctype)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"upload failed: {type(exc).__name__}") from None
        return StoredObject(key, len(data), ctype)

    async def iter_chunks(self, key: str) -> AsyncIterator[bytes]:
        client = await self._get_client()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from None
            raise StorageError(f"download failed: {type(exc).__name__}") from None
        body = response["Body"]
        try:
            while chunk := await body.read(CHUNK_SIZE):
                yield chunk
        finally:
            body.close()

    async def download_to(self, key: str, path: Path) -> None:
        with open_fresh(path) as handle:  # not truncated: no flush on close (photobot/files.py)
            async for chunk in self.iter_chunks(key):
                handle.write(chunk)

    async def exists(self, key: str) -> bool:
        client = await self._get_client()
        try:
            await client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise StorageError(f"head failed: {type(exc).__name__}") from None
        return True

    async def delete(self, key: str) -> None:
        client = await self._get_client()
        try:
            await client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"delete failed: {type(exc).__name__}") from None

    async def url(self, key: str, expires_s: int, *, filename: str | None = None) -> str:
        client = await self._get_client()
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = await client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)
        return url

    async def check(self) -> None:
        client = await self._get_client()
        try:
            await client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"bucket not reachable: {type(exc).__name__}") from None

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None
