"""Image intake through the API: size cap while reading, sniffed type, bomb guard, EXIF, downscale, URLs."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import Callable
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from photobot.db import Database
from photobot.settings import Settings
from tests.support.api import (
    assert_accepted,
    assert_problem,
    cleaned_input,
    job_row,
    read_stored,
    stored_keys,
    submit_json,
    submit_multipart,
    unchanged,
)
from tests.support.images import data_uri, encode, jpeg, noise_jpeg, png_bomb
from tests.support.records import ledger_reasons
from tests.support.servers import serve
from tests.support.stack import Stack, StackFactory, fast_sim, open_app

MB = 1024 * 1024


def stored_image(api: Stack, key: str) -> Image.Image:
    img = Image.open(io.BytesIO(read_stored(api, key)))
    img.load()
    return img


async def test_size_limit_is_413_and_enforced_while_reading(api: Stack) -> None:
    big = noise_jpeg(5 * MB + 100_000)  # a real JPEG just over the default 5 MB cap
    headers = api.auth
    async with unchanged(api):
        for submit in (submit_multipart, submit_json):
            body = assert_problem(await submit(api, big), 413, "image_too_large")
            assert "5242880 bytes" in body["detail"], body  # the image cap the docs name, whatever the encoding

        # Proof that the cap is enforced while reading: the client sends more than the cap and then stops
        # without finishing the body; the answer must already be there. Chunked (no Content-Length) ...
        head = await raw_request(api, headers, body=b"\xff" * (5 * MB + 200_000), chunked=True)
        assert head.startswith(b"HTTP/1.1 413"), head[:200]
        assert b"image_too_large" in head
        # ... and a declared Content-Length over the cap is refused before a single body byte is sent.
        head = await raw_request(api, {**headers, "Content-Length": str(50 * MB)}, body=b"")
        assert head.startswith(b"HTTP/1.1 413"), head[:200]


async def raw_request(api: Stack, headers: dict[str, str], *, body: bytes, chunked: bool = False) -> bytes:
    """POST a multipart body that never ends (no final chunk / short of Content-Length); return the answer."""
    host, port = api.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [
            "POST /v1/jobs HTTP/1.1",
            f"Host: {host}:{port}",
            "Content-Type: multipart/form-data; boundary=b",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        preamble = b'--b\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n\r\n'
        payload = preamble + body if body else b""
        try:
            for offset in range(0, len(payload), 65536):
                piece = payload[offset : offset + 65536]
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                await writer.drain()
        except ConnectionError:  # the server may stop reading once it has answered
            pass
        answer = b""
        deadline = asyncio.get_running_loop().time() + 10
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):  # headers and the JSON body
            remaining = deadline - asyncio.get_running_loop().time()
            chunk = await asyncio.wait_for(reader.read(4096), max(remaining, 0.01))
            if not chunk:
                break
            answer += chunk
        return answer
    finally:
        writer.close()


async def test_configurable_size_limit(database: Database, make_settings: Callable[..., Settings]) -> None:
    async with open_app(database, make_settings, max_image_bytes=40_000) as served:
        api = served
        photo = noise_jpeg(45_000)
        async with unchanged(api):
            assert_problem(await submit_multipart(api, photo), 413, "image_too_large")
            assert_problem(await submit_json(api, photo), 413, "image_too_large")
        assert_accepted(await submit_multipart(api, jpeg()))


async def test_content_type_comes_from_the_bytes(api: Stack) -> None:
    gif = encode(Image.new("RGB", (8, 8)), "GIF")
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    async with unchanged(api):
        for payload in (gif, b"%PDF-1.7\n" + b"x" * 100, b"<svg xmlns='http://www.w3.org/2000/svg'/>", heic):
            # the declared type says JPEG; the bytes decide
            assert_problem(
                await submit_multipart(api, payload, content_type="image/jpeg"), 415, "unsupported_media_type"
            )
            assert_problem(await submit_json(api, data_uri(payload, "image/jpeg")), 415, "unsupported_media_type")
        body = assert_problem(await submit_multipart(api, heic), 415, "unsupported_media_type")
        assert "HEIC" in body["detail"]
        # a bomb: 30000 x 30000 pixels claimed by a ~100-byte PNG; refused from the header
        assert_problem(await submit_multipart(api, png_bomb(), content_type="image/png"), 422, "image_too_many_pixels")
        assert_problem(await submit_json(api, data_uri(png_bomb(), "image/png")), 422, "image_too_many_pixels")
        # real magic, broken body
        assert_problem(await submit_multipart(api, jpeg()[:40]), 422, "invalid_image")
        assert_problem(await submit_multipart(api, b""), 422, "invalid_image")


async def test_the_submit_step_cleans_what_intake_accepted(database: Database, stack: StackFactory) -> None:
    """Intake stores the upload as sent; the worker's submit step decodes it (in the image process pool), applies
    the EXIF orientation, strips every piece of metadata, downscales, stores the result as the provider's input
    and deletes the upload. What does not decode fails the job with `invalid_image` and releases the credit."""
    async with stack(database, fast_sim(), max_long_side=256, credits=20) as env:
        # PNG and WebP are accepted whatever the declared type; opaque images are stored as JPEG, alpha as PNG
        opaque = encode(Image.new("RGB", (64, 64), "blue"), "PNG")
        png = assert_accepted(await submit_multipart(env, opaque, content_type="application/octet-stream"))
        webp = assert_accepted(
            await submit_json(env, data_uri(encode(Image.new("RGB", (64, 64), "green"), "WEBP"), "image/png"))
        )
        alpha = assert_accepted(
            await submit_multipart(env, encode(Image.new("RGBA", (64, 64), (0, 0, 255, 100)), "PNG"))
        )
        assert (await cleaned_input(env, png["id"])).input_key.endswith(".jpg")
        assert (await cleaned_input(env, webp["id"])).input_key.endswith(".jpg")
        key = (await cleaned_input(env, alpha["id"])).input_key
        assert key.endswith(".png") and stored_image(env, key).mode == "RGBA"

        # landscape pixels, red marker in the top-left; orientation 6 means "rotate 90 degrees clockwise to view"
        img = Image.new("RGB", (120, 60), "white")
        img.paste((255, 0, 0), (0, 0, 30, 20))
        exif = Image.Exif()
        exif[0x0112] = 6
        exif[0x010F] = "secret-camera"
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2], gps[3], gps[4] = "S", (6.0, 10.0, 30.0), "E", (106.0, 49.0, 0.0)
        photo = encode(img, "JPEG", quality=95, exif=exif, comment=b"secret-comment")
        with Image.open(io.BytesIO(photo)) as original:
            assert original.getexif().get_ifd(0x8825) and original.getexif()[0x0112] == 6
        for submit in (submit_multipart, submit_json):
            job = await cleaned_input(env, assert_accepted(await submit(env, photo))["id"])
            raw = read_stored(env, job.input_key)
            out = stored_image(env, job.input_key)
            assert out.size == (60, 120), out.size  # upright: portrait now
            r, g, b = out.getpixel((out.width - 5, 5))[:3]  # the marker moved to the top-right corner
            assert r > 200 and g < 60 and b < 60, (r, g, b)
            assert len(out.getexif()) == 0
            assert not {"exif", "icc_profile", "comment", "xmp"} & set(out.info)
            for marker in (b"Exif\x00\x00", b"secret-camera", b"secret-comment", b"GPS"):
                assert marker not in raw, marker

        # downscaled to the long side, never upscaled
        job = await cleaned_input(env, assert_accepted(await submit_multipart(env, jpeg((1200, 400))))["id"])
        assert stored_image(env, job.input_key).size == (256, 85)
        small = await cleaned_input(env, assert_accepted(await submit_json(env, jpeg((100, 50))))["id"])
        assert stored_image(env, small.input_key).size == (100, 50)
        assert not [k for k in stored_keys(env) if k.startswith("uploads/")]  # every upload was deleted

        # a JPEG whose header is fine and whose pixels are cut off: accepted, then failed, credit back
        whole = noise_jpeg(60_000)
        truncated = assert_accepted(await submit_multipart(env, whole[: len(whole) // 2]))
        failed = await env.wait_state(truncated["id"], ("failed",))
        assert failed.error_code == "invalid_image"
        assert await ledger_reasons(env.db, failed.id) == ["reserve", "release"]


async def test_default_long_side_is_2048(database: Database, stack: StackFactory) -> None:
    async with stack(database, fast_sim()) as env:
        job = await cleaned_input(env, assert_accepted(await submit_multipart(env, jpeg((3000, 1500))))["id"])
        assert stored_image(env, job.input_key).size == (2048, 1024)


async def test_url_input_is_downloaded(api: Stack) -> None:
    """PHOTOBOT_ALLOW_PRIVATE_NETWORKS=true (the test default) lets a loopback http URL through."""
    photo = jpeg((80, 40), "purple")
    big = noise_jpeg(5 * MB + 50_000)
    hits: list[str] = []

    async def image(request: Any) -> Response:
        hits.append(request.url.path)
        name = request.path_params["name"]
        if name == "photo.jpg":
            return Response(photo, media_type="image/jpeg")
        if name == "big.jpg":
            return Response(big, media_type="image/jpeg")
        if name == "page.html":
            return Response(b"<html></html>", media_type="text/html")
        return Response(b"gone", status_code=404)

    origin = Starlette(routes=[Route("/img/{name}", image)])
    async with serve(origin) as base:
        job = await job_row(api, assert_accepted(await submit_json(api, f"{base}/img/photo.jpg"))["id"])
        assert stored_image(api, job.input_key).size == (80, 40)
        # a URL given as a multipart text field works too
        response = await api.client.post(
            "/v1/jobs",
            data={"style": "pb_a"},
            files={"image": (None, f"{base}/img/photo.jpg".encode())},  # a text part, not a file
            headers=api.auth,
        )
        assert_accepted(response)
        async with unchanged(api):
            assert_problem(await submit_json(api, f"{base}/img/big.jpg"), 413, "image_too_large")
            assert_problem(await submit_json(api, f"{base}/img/page.html"), 415, "unsupported_media_type")
            missing = await submit_json(api, f"{base}/img/missing.jpg?sig=s3cret")
            body = assert_problem(missing, missing.status_code, "fetch_failed")
            assert missing.status_code in (422, 502)
            assert "s3cret" not in body["detail"]
    assert len(stored_keys(api)) == 2


_OPENS: list[tuple[str, int]] = []
_HOOKED: list[bool] = []  # an audit hook cannot be removed: installed once, recording only while _HOOKED[0]


def _record_open(event: str, args: tuple[Any, ...]) -> None:
    if _HOOKED and _HOOKED[0] and event == "open" and isinstance(args[0], str | os.PathLike):
        path = os.fspath(args[0])
        if os.path.basename(path).startswith("in-"):
            _OPENS.append((path, args[2]))


async def test_upload_temp_files_are_never_truncated(api: Stack) -> None:
    """Each upload's temp file is opened without O_TRUNC: ext4 (auto_da_alloc) flushes a file truncated to zero
    bytes when it is closed, in the closing thread (the event loop), which stalled every request under load."""
    if not _HOOKED:
        sys.addaudithook(_record_open)
        _HOOKED.append(False)
    photo = jpeg((80, 40), "purple")

    async def image(request: Any) -> Response:
        return Response(photo, media_type="image/jpeg")

    async with serve(Starlette(routes=[Route("/img/photo.jpg", image)])) as base:
        _OPENS.clear()
        _HOOKED[0] = True
        try:
            assert_accepted(await submit_multipart(api, photo))
            assert_accepted(await submit_json(api, photo))  # a data: URI
            assert_accepted(await submit_json(api, f"{base}/img/photo.jpg"))
        finally:
            _HOOKED[0] = False
    assert len({path for path, _ in _OPENS}) == 3, _OPENS
    assert all(not flags & os.O_TRUNC for _, flags in _OPENS), _OPENS
