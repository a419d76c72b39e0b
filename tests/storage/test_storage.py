"""Object storage: LocalStorage (signed /media links served by the app) and S3Storage against moto's server."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from photobot.app import create_app
from photobot.settings import Settings
from photobot.signing import MediaSigner
from photobot.storage import StorageError, open_storage
from photobot.storage.base import CHUNK_SIZE, ObjectNotFound
from photobot.storage.local import LocalStorage
from photobot.storage.s3 import S3Storage
from tests.support.servers import serve

SECRET = "storage-test-secret-" + "s" * 24
BAD_KEYS = ["../etc/passwd", "a/../../b", "/abs/path.jpg", "a//b.jpg", "./x.jpg", "a/./b.jpg", ".hidden", "a\\b", ""]


def _local(root: Path, base_url: str = "http://photobot.test") -> LocalStorage:
    return LocalStorage(root, base_url=base_url, signer=MediaSigner([SECRET]))


async def _exercise(storage: LocalStorage | S3Storage, tmp_path: Path) -> None:
    """The operations every backend shares."""
    source = tmp_path / "source.jpg"
    source.write_bytes(b"\xff\xd8\xff" + os.urandom(5000))
    stored = await storage.put_file("results/job1/out.jpg", source)
    assert (stored.key, stored.size, stored.content_type) == ("results/job1/out.jpg", 5003, "image/jpeg")
    assert await storage.exists("results/job1/out.jpg")

    png = await storage.put_bytes("inputs/a.png", b"\x89PNG-data", content_type="image/png")
    assert (png.size, png.content_type) == (9, "image/png")
    assert b"".join([c async for c in storage.iter_chunks("inputs/a.png")]) == b"\x89PNG-data"

    copy = tmp_path / "copy.jpg"
    await storage.download_to("results/job1/out.jpg", copy)
    assert copy.read_bytes() == source.read_bytes()

    # `move`: the store takes a temp file the caller is done with (local storage renames it: no copy)
    taken = tmp_path / "taken.jpg"
    taken.write_bytes(copy.read_bytes())
    moved = await storage.put_file("inputs/job1.jpg", taken, move=True)
    assert moved.size == 5003 and not taken.exists()
    assert b"".join([c async for c in storage.iter_chunks("inputs/job1.jpg")]) == source.read_bytes()

    # overwriting is allowed (deterministic keys make retries safe)
    await storage.put_bytes("inputs/a.png", b"second")
    assert b"".join([c async for c in storage.iter_chunks("inputs/a.png")]) == b"second"

    await storage.delete("inputs/a.png")
    assert not await storage.exists("inputs/a.png")
    await storage.delete("inputs/a.png")  # deleting a missing object is fine
    assert not await storage.exists("never/there.jpg")
    with pytest.raises(ObjectNotFound):
        [c async for c in storage.iter_chunks("never/there.jpg")]

    for key in BAD_KEYS:
        with pytest.raises(StorageError):
            await storage.put_bytes(key, b"x")
        with pytest.raises(StorageError):
            await storage.exists(key)
    await storage.check()


async def test_local_storage_operations(tmp_path: Path) -> None:
    root = tmp_path / "media"
    storage = _local(root)
    await _exercise(storage, tmp_path)
    assert (root / "results/job1/out.jpg").is_file()
    assert not list(root.rglob("*.tmp"))  # atomic writes leave no temporaries behind
    assert not (tmp_path / "etc").exists()
    with pytest.raises(ObjectNotFound):
        await storage.download_to("missing.jpg", tmp_path / "x")


async def test_local_storage_streams_in_bounded_chunks(tmp_path: Path) -> None:
    storage = _local(tmp_path / "media")
    data = os.urandom(3 * CHUNK_SIZE + 17)
    await storage.put_bytes("big.bin", data)
    chunks = [c async for c in storage.iter_chunks("big.bin")]
    assert max(len(c) for c in chunks) <= CHUNK_SIZE
    assert b"".join(chunks) == data


def _signed(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


async def test_signed_media_links_through_the_app(make_settings: Callable[..., Settings], sqlite_url: str) -> None:
    settings = make_settings(database_url=sqlite_url, secret_key=SECRET)
    app = create_app(settings, run_dispatcher=False)
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        storage = app.state.runtime.storage
        assert isinstance(storage, LocalStorage)
        await storage.put_bytes("results/j1/photo.png", b"\x89PNG\r\n\x1a\nfake")
        await storage.put_bytes("results/j1/photo.jpg", b"\xff\xd8\xffjpeg")

        url = await storage.url("results/j1/photo.png", 60)
        assert url.startswith(settings.public_base_url + "/media/results/j1/photo.png?")
        path, query = _signed(url)
        ok = await client.get(path, params=query)
        assert ok.status_code == 200
        assert ok.content == b"\x89PNG\r\n\x1a\nfake"
        assert ok.headers["content-type"] == "image/png"
        assert ok.headers["x-content-type-options"] == "nosniff"

        path, query = _signed(await storage.url("results/j1/photo.jpg", 60, filename="guest.jpg"))
        download = await client.get(path, params=query)
        assert download.headers["content-type"] == "image/jpeg"
        assert download.headers["content-disposition"].startswith("attachment")
        assert 'filename="guest.jpg"' in download.headers["content-disposition"]
        # the download name is signed: a re-shared link cannot rename the photo, add a name, or drop it
        for renamed in ({**query, "filename": "invoice.exe"}, {k: v for k, v in query.items() if k != "filename"}):
            refused = await client.get(path, params=renamed)
            assert refused.status_code == 403 and refused.json()["code"] == "bad_signature"
        unnamed_path, unnamed = _signed(await storage.url("results/j1/photo.jpg", 60))
        refused = await client.get(unnamed_path, params={**unnamed, "filename": "invoice.exe"})
        assert refused.status_code == 403 and refused.json()["code"] == "bad_signature"

        path, query = _signed(await storage.url("results/j1/photo.png", 60))
        tampered = {**query, "sig": query["sig"][:-2] + ("AA" if not query["sig"].endswith("AA") else "BB")}
        other_key = "/media/results/j1/photo.jpg"  # a valid signature for another key
        longer = {**query, "exp": str(int(query["exp"]) + 3600)}  # stretching the expiry breaks the signature
        expired_at = int(time.time()) - 10
        expired = {"exp": str(expired_at), "sig": storage.signer.sign("results/j1/photo.png", expired_at)}
        for bad_path, params in (
            (path, tampered),
            (other_key, query),
            (path, longer),
            (path, expired),
            (path, {"exp": query["exp"]}),
            (path, {"exp": "soon", "sig": query["sig"]}),
        ):
            response = await client.get(bad_path, params=params)
            assert response.status_code == 403, (bad_path, params)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == "bad_signature"

        # a traversal key cannot be signed, and a crafted one never reads outside the media directory
        with pytest.raises(StorageError):
            await storage.url("../secret_key", 60)
        exp = int(time.time()) + 60
        for crafted in ("../secret_key", "results/../../secret_key", "%2e%2e/secret_key"):
            response = await client.get(
                f"/media/{crafted}", params={"exp": exp, "sig": storage.signer.sign(crafted, exp)}
            )
            assert response.status_code in (403, 404), crafted
            assert SECRET not in response.text

        missing_exp = int(time.time()) + 60
        missing = await client.get(
            "/media/results/none.png",
            params={"exp": missing_exp, "sig": storage.signer.sign("results/none.png", missing_exp)},
        )
        # we sign links only to stored photos: a good link to an object that is gone was deleted since (retention,
        # a forgotten guest, a purged event)
        assert missing.status_code == 410 and missing.json()["code"] == "gone"


def _s3(url: str) -> S3Storage:
    storage = open_storage(url, public_base_url="http://photobot.test", secrets=[SECRET])
    assert isinstance(storage, S3Storage)
    return storage


async def test_s3_storage_operations_and_presigned_urls(s3_storage_url: str, tmp_path: Path) -> None:
    storage = _s3(s3_storage_url)
    try:
        await _exercise(storage, tmp_path)
        await storage.put_bytes("results/j2/photo.webp", b"RIFF....WEBPdata")
        url = await storage.url("results/j2/photo.webp", 60)
        async with httpx.AsyncClient() as client:
            fetched = await client.get(url)
            assert fetched.status_code == 200
            assert fetched.content == b"RIFF....WEBPdata"
            assert fetched.headers["content-type"] == "image/webp"
            unsigned = await client.get(url.split("?", 1)[0])
            assert unsigned.status_code == 403
            attachment = await client.get(await storage.url("results/j2/photo.webp", 60, filename="guest.webp"))
            assert 'filename="guest.webp"' in attachment.headers["content-disposition"]
    finally:
        await storage.close()


async def test_s3_prefix_keeps_objects_under_it(s3_storage_url: str) -> None:
    bucket_part, query = s3_storage_url.split("?", 1)
    prefixed = _s3(f"{bucket_part}/tenant-a?{query}")
    plain = _s3(s3_storage_url)
    try:
        assert prefixed.prefix == "tenant-a"
        await prefixed.put_bytes("x/y.jpg", b"data")
        assert await plain.exists("tenant-a/x/y.jpg")
        assert not await plain.exists("x/y.jpg")
    finally:
        await prefixed.close()
        await plain.close()


async def test_s3_streams_a_large_object_in_bounded_chunks(s3_storage_url: str, tmp_path: Path) -> None:
    size = 20 * 1024 * 1024
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        for _ in range(20):
            handle.write(os.urandom(1024 * 1024))
    storage = _s3(s3_storage_url)
    try:
        stored = await storage.put_file("results/big.bin", big)  # multipart above boto's threshold
        assert stored.size == size
        total, count, largest = 0, 0, 0
        async for chunk in storage.iter_chunks("results/big.bin"):
            total += len(chunk)
            count += 1
            largest = max(largest, len(chunk))
        assert total == size
        assert largest <= CHUNK_SIZE
        assert count >= size // CHUNK_SIZE
        copy = tmp_path / "copy.bin"
        await storage.download_to("results/big.bin", copy)
        assert copy.stat().st_size == size
    finally:
        await storage.close()


async def test_s3_check_fails_for_a_missing_bucket(s3_endpoint: str) -> None:
    storage = _s3(f"s3://no-such-bucket-x1?endpoint_url={s3_endpoint}&region=us-east-1&access_key=t&secret_key=t")
    try:
        with pytest.raises(StorageError) as caught:
            await storage.check()
        assert "secret" not in str(caught.value)
    finally:
        await storage.close()


def test_open_storage_picks_the_backend(tmp_path: Path) -> None:
    local = open_storage(f"file://{tmp_path / 'media'}", public_base_url="http://h.test/", secrets=[SECRET])
    assert isinstance(local, LocalStorage)
    assert local.root == (tmp_path / "media").resolve()
    assert local.base_url == "http://h.test"

    s3 = open_storage(
        "s3://bucket/some/prefix?endpoint_url=http://127.0.0.1:9000&region=eu-west-1&access_key=a&secret_key=b",
        public_base_url="http://h.test",
        secrets=[SECRET],
    )
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    assert s3._endpoint_url == "http://127.0.0.1:9000"
    assert s3._region == "eu-west-1"

    with pytest.raises(StorageError):
        open_storage("s3://", public_base_url="http://h.test", secrets=[SECRET])
    with pytest.raises(StorageError):
        open_storage("ftp://host/x", public_base_url="http://h.test", secrets=[SECRET])


def test_media_signer_accepts_rotated_secrets() -> None:
    old = MediaSigner(["old-secret-value"])
    rotated = MediaSigner(["new-secret-value", "old-secret-value"])
    exp = int(time.time()) + 60
    assert rotated.verify("k.jpg", exp, old.sign("k.jpg", exp))
    assert not MediaSigner(["new-secret-value"]).verify("k.jpg", exp, old.sign("k.jpg", exp))
    assert not rotated.verify("k.jpg", exp, "garbage")
