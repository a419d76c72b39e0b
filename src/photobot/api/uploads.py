"""Getting the guest's photo from the request onto disk, under the byte cap, without buffering the body.

Three forms reach us: a multipart `image` file part, a JSON `image` data URI, or a JSON `image` https URL
(downloaded through the SSRF-safe fetcher). Each lands in a temporary file; the caller owns and deletes it.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from photobot import jsontext
from photobot.intake import ImageTooLarge, decode_data_uri
from photobot.net.errors import FetchError, TooLarge
from photobot.net.fetcher import SafeFetcher
from photobot.problems import Problem
from photobot.web.body import iter_body, parse_json

FORM_OVERHEAD = 64 * 1024  # multipart headers and the small text fields
JSON_OVERHEAD = 64 * 1024
COPY_CHUNK = 256 * 1024


@dataclass
class RawImage:
    path: Path
    size: int
    sha256: str


def bad_request(code: str, detail: str) -> Problem:
    return Problem(400, code, "Bad request", detail)


async def read_json(request: Request, max_image_bytes: int) -> dict[str, Any]:
    limit = (max_image_bytes + 2) // 3 * 4 + JSON_OVERHEAD  # base64 grows 4/3
    body = bytearray()
    async for chunk in iter_body(request, limit, too_large=lambda: ImageTooLarge(limit)):
        body.extend(chunk)
    data = parse_json(bytes(body))
    if not isinstance(data, dict):
        raise Problem(422, "validation_error", "Invalid request", "The body must be a JSON object.")
    return data


async def read_form(request: Request, max_image_bytes: int) -> tuple[dict[str, str], UploadFile | None]:
    parser = MultiPartParser(
        request.headers,
        iter_body(
            request, max_image_bytes + FORM_OVERHEAD, too_large=lambda: ImageTooLarge(max_image_bytes + FORM_OVERHEAD)
        ),
        max_files=1,
        max_fields=20,
        max_part_size=16 * 1024,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise bad_request("malformed_form", str(exc)) from None
    fields: dict[str, str] = {}
    upload: UploadFile | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "image":
                await value.close()
                raise Problem(422, "validation_error", "Invalid request", f"Unexpected file field {name!r}.")
            upload = value
        elif name in fields:
            raise Problem(422, "validation_error", "Invalid request", f"Field {name!r} given twice.")
        else:
            try:
                jsontext.check_text(value)  # the JSON bodies' policy, for form fields
            except jsontext.JSONRefused as exc:
                raise Problem(422, "validation_error", "Invalid request", f"Field {name!r}: {exc.reason}.") from None
            fields[name] = value
    return fields, upload


def _temp_path(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix="in-", delete=False)  # noqa: SIM115
    handle.close()
    return Path(handle.name)


async def save_upload(upload: UploadFile, tmp_dir: Path, max_bytes: int) -> RawImage:
    path = _temp_path(tmp_dir)
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("wb") as out:
            while chunk := await upload.read(COPY_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ImageTooLarge(max_bytes)
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        await upload.close()
    if size == 0:
        path.unlink(missing_ok=True)
        raise Problem(422, "invalid_image", "Invalid image", "The image is empty.")
    return RawImage(path, size, digest.hexdigest())


async def save_image_field(value: str, fetcher: SafeFetcher, tmp_dir: Path, max_bytes: int) -> RawImage:
    """A JSON `image`: a base64 data URI or an https URL."""
    path = _temp_path(tmp_dir)
    try:
        if value[:5].lower() == "data:":
            with path.open("wb") as out:
                _, size = decode_data_uri(value, out, max_bytes)
        elif value[:8].lower() == "https://" or value[:7].lower() == "http://":
            try:
                result = await fetcher.stream_to_file(value, path, max_bytes=max_bytes)
            except TooLarge:
                raise ImageTooLarge(max_bytes) from None
            except FetchError as exc:
                raise exc.to_problem() from None
            size = result.size
        else:
            raise Problem(422, "validation_error", "Invalid request", "`image` must be a data: URI or an https:// URL.")
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(COPY_CHUNK):
                digest.update(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return RawImage(path, size, digest.hexdigest())
