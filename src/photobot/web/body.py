"""Request bodies at the edge: read under a byte cap while streaming, parse JSON, validate into a model (422).

Every entry point (kiosk API, provider callbacks, admin API) reads its body through these helpers, so a body over
its limit is refused as soon as the limit is passed — from `Content-Length` before a byte is read, or mid-stream —
and never costs more than the limit in memory; malformed JSON is a 400 and a body of the wrong shape a 422 with
the fields named, all as problem+json.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from photobot import jsontext
from photobot.problems import Problem, validation_error

M = TypeVar("M", bound=BaseModel)


def payload_too_large(limit: int, what: str = "Request bodies") -> Problem:
    return Problem(413, "payload_too_large", "Payload too large", f"{what} are limited to {_size(limit)}.")


async def iter_body(
    request: Request, limit: int, *, too_large: Callable[[], Exception] | None = None
) -> AsyncGenerator[bytes, None]:
    """The request body in chunks, failing as soon as it passes `limit` bytes (413 unless `too_large` says)."""
    refuse = too_large or (lambda: payload_too_large(limit))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise refuse()
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise refuse()
            yield chunk
    except ClientDisconnect:
        raise Problem(400, "client_disconnected", "Bad request", "The request body ended early.") from None


async def read_body(request: Request, limit: int, *, what: str = "Request bodies") -> bytes:
    """The whole body, at most `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) <= limit and "transfer-encoding" not in request.headers:
        # the server's framing delivers exactly the declared length: read it in one go (provider callbacks, on
        # every request, skip the chunk-by-chunk generator)
        try:
            return await request.body()
        except ClientDisconnect:
            raise Problem(400, "client_disconnected", "Bad request", "The request body ended early.") from None
    body = bytearray()
    async for chunk in iter_body(request, limit, too_large=lambda: payload_too_large(limit, what)):
        body.extend(chunk)
    return bytes(body)


def malformed_json() -> Problem:
    return Problem(400, "malformed_json", "Bad request", "The body is not valid JSON.")


def parse_json(raw: bytes | str) -> Any:
    """JSON under the one policy (`photobot.jsontext`): not JSON → 400; a key twice or too deep → 422."""
    try:
        return jsontext.loads(raw, stored=True)
    except jsontext.JSONRefused as exc:
        if exc.reason == "not valid JSON":
            raise malformed_json() from None
        raise validation_error(
            f"The body is refused: {exc.reason}.", [{"field": "body", "message": exc.reason}]
        ) from None


async def read_json(request: Request, limit: int, *, what: str = "Request bodies", empty: Any = None) -> Any:
    """The body parsed as JSON; an empty body gives `empty` when that is not None (a 400 otherwise)."""
    raw = await read_body(request, limit, what=what)
    if empty is not None and not raw.strip():
        return empty
    return parse_json(raw)


def validation_problem(exc: ValidationError) -> Problem:
    """pydantic's errors as one 422 problem, each field named."""
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"].removeprefix("Value error, ")}
        for e in exc.errors()
    ]
    return validation_error("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def _size(limit: int) -> str:
    return f"{limit // 1024} KB" if limit % 1024 == 0 and limit < 1024 * 1024 else f"{limit} bytes"
