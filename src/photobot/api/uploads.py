"""Getting the guest's photo from the request onto disk, under the byte cap, without buffering the body.

Three forms reach us: a multipart `image` file part (streamed by `receive_form` straight into its file), a JSON
`image` data URI, or a JSON `image` https URL (downloaded through the SSRF-safe fetcher). Each lands in a temporary
file with its size and SHA-256; the caller owns it (and hands it to storage, which takes it without a copy).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from photobot import jsontext
from photobot.files import open_fresh
from photobot.intake import ImageTooLarge, decode_data_uri
from photobot.net.errors import FetchError, TooLarge
from photobot.net.fetcher import SafeFetcher
from photobot.problems import Problem
from photobot.web.body import iter_body, parse_json

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FORM_OVERHEAD = 64 * 1024  # multipart headers and the small text fields
MAX_FIELDS = 20
MAX_FIELD_BYTES = 16 * 1024
JSON_OVERHEAD = 64 * 1024
COPY_CHUNK = 256 * 1024


@dataclass
class RawImage:
    path: Path
    size: int
    sha256: str | None  # None when not asked for: only an Idempotency-Key's replay check needs it


def bad_request(code: str, detail: str) -> Problem:
    return Problem(400, code, "Bad request", detail)


async def read_json(request: Request, max_image_bytes: int) -> dict[str, Any]:
    limit = (max_image_bytes + 2) // 3 * 4 + JSON_OVERHEAD  # base64 grows 4/3
    body = bytearray()
    async for chunk in iter_body(request, limit, too_large=lambda: ImageTooLarge(max_image_bytes)):
        body.extend(chunk)
    data = parse_json(bytes(body))
    if not isinstance(data, dict):
        raise Problem(422, "validation_error", "Invalid request", "The body must be a JSON object.")
    return data


class _FormSink:
    """python-multipart's callbacks for a kiosk's form: text fields into memory (few and small), the one file part
    straight into `path` while it is hashed and counted. No spooled copy, no thread hop per chunk: the parser runs
    on the event loop and each chunk costs one page-cache write (what the floor in bench/baseline.py does too).
    Every refusal is raised from the callback that sees it, so nothing past the limit is read."""

    def __init__(self, path: Path, max_image_bytes: int, *, digest: bool = True) -> None:
        self.path, self.max_image_bytes = path, max_image_bytes
        self.fields: dict[str, str] = {}
        self.files = self.size = 0
        self.digest = hashlib.sha256() if digest else None
        self._headers: dict[bytes, bytes] = {}
        self._field, self._value = bytearray(), bytearray()
        self._name: str | None = None
        self._out: BinaryIO | None = None
        self._text: bytearray | None = None
        self.open_file = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }  # fmt: skip

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field, self._value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise bad_request("malformed_form", 'A part has no Content-Disposition "name".')
        name = _decode(options[b"name"])
        self._name = name
        if b"filename" in options:
            self.files += 1
            if name != "image":
                raise Problem(422, "validation_error", "Invalid request", f"Unexpected file field {name!r}.")
            if self.files > 1:
                raise bad_request("malformed_form", "Too many files: send one `image`.")
            self._out = open_fresh(self.path)
            self.open_file = True
        else:
            if len(self.fields) >= MAX_FIELDS:
                raise bad_request("malformed_form", f"Too many fields: at most {MAX_FIELDS}.")
            self._text = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self.size += end - start
            if self.size > self.max_image_bytes:
                raise ImageTooLarge(self.max_image_bytes)
            chunk = data[start:end]
            if self.digest is not None:
                self.digest.update(chunk)
            self._out.write(chunk)
        elif self._text is not None:
            self._text += data[start:end]
            if len(self._text) > MAX_FIELD_BYTES:
                raise bad_request("malformed_form", f"A form field is longer than {MAX_FIELD_BYTES} bytes.")

    def _part_end(self) -> None:
        name = self._name or ""
        if self._out is not None:
            self._out.close()
            self._out = None
            self.open_file = False
            return
        value = _decode(bytes(self._text or b""))
        self._text = None
        if name in self.fields:
            raise Problem(422, "validation_error", "Invalid request", f"Field {name!r} given twice.")
        try:
            jsontext.check_text(value)  # the JSON bodies' policy, for form fields
        except jsontext.JSONRefused as exc:
            raise Problem(422, "validation_error", "Invalid request", f"Field {name!r}: {exc.reason}.") from None
        self.fields[name] = value

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def receive_form(
    request: Request, tmp_dir: Path, max_image_bytes: int, *, digest: bool = True
) -> tuple[dict[str, str], RawImage | None]:
    """A multipart form: its text fields, and its `image` file part streamed to a temp file (the caller owns it)
    with its size and (with `digest`) SHA-256; None when the form has no file part."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise bad_request("malformed_form", "Missing boundary in multipart.")
    path = _temp_path(tmp_dir)
    sink = _FormSink(path, max_image_bytes, digest=digest)
    limit = max_image_bytes + FORM_OVERHEAD
    try:
        parser = MultipartParser(boundary, sink.callbacks())
        async for chunk in iter_body(request, limit, too_large=lambda: ImageTooLarge(max_image_bytes)):
            parser.write(chunk)
        parser.finalize()
        if sink.open_file:
            raise bad_request("malformed_form", "The form ended inside the image part.")
    except FormParserError as exc:
        path.unlink(missing_ok=True)
        raise bad_request("malformed_form", str(exc)[:200]) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        sink.close()
    if sink.files == 0:
        path.unlink(missing_ok=True)
        return sink.fields, None
    if sink.size == 0:
        path.unlink(missing_ok=True)
        raise Problem(422, "invalid_image", "Invalid image", "The image is empty.")
    return sink.fields, RawImage(path, sink.size, sink.digest.hexdigest() if sink.digest is not None else None)


def _temp_path(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix="in-", delete=False)  # noqa: SIM115
    handle.close()
    return Path(handle.name)


async def save_image_field(
    value: str, fetcher: SafeFetcher, tmp_dir: Path, max_bytes: int, *, digest: bool = True
) -> RawImage:
    """A JSON `image`: a base64 data URI or an https URL (with `digest`, its SHA-256 too)."""
    path = _temp_path(tmp_dir)
    try:
        if value[:5].lower() == "data:":
            with open_fresh(path) as out:
                _, size = decode_data_uri(value, out, max_bytes)
        elif value[:8].lower() == "https://" or value[:7].lower() == "http://":
            try:
                with open_fresh(path) as out:
                    result = await fetcher.stream_to_file(value, out, max_bytes=max_bytes)
            except TooLarge:
                raise ImageTooLarge(max_bytes) from None
            except FetchError as exc:
                raise exc.to_problem() from None
            size = result.size
        else:
            raise Problem(422, "validation_error", "Invalid request", "`image` must be a data: URI or an https:// URL.")
        sha256 = None
        if digest:
            hasher = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(COPY_CHUNK):
                    hasher.update(chunk)
            sha256 = hasher.hexdigest()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return RawImage(path, size, sha256)
