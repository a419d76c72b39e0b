"""`POST /v1/jobs` (submit a guest's photo) and `GET /v1/jobs/{id}` (follow it).

Submission answers 202 as soon as the photo is stored and the credit reserved: the photo's type and header
dimensions are checked here, its pixels are decoded and cleaned by the worker's submit step, and no provider is
called here. A style whose model takes no input image (text-to-image) is submitted without `image`; a photo sent
to it is refused here (422 `image_not_accepted`), as is a missing photo for every other style.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.api import uploads
from photobot.api.schemas import JobFields, JobRequest
from photobot.api.views import RETRY_AFTER_S, etag, job_view
from photobot.db.models import ClientToken, Job
from photobot.intake import inspect
from photobot.jobs import lookup
from photobot.jobs.accept import (
    Guest,
    IdempotencyKeyUsed,
    Submission,
    check_style_photo,
    create_job,
    find_idempotent,
    plan_submission,
)
from photobot.logs import bind
from photobot.problems import Problem, not_found, validation_error
from photobot.runtime import Runtime
from photobot.web import context
from photobot.web.auth import can_see_job, require_client, resolve_owner
from photobot.web.body import validation_problem
from photobot.web.ratelimit import enforce

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_MAX = 200


async def _parse(
    request: Request, runtime: Runtime, *, digest: bool
) -> tuple[JobFields, uploads.RawImage | None, str | None]:
    """The fields, and the photo: a file part already on disk (hashed with `digest`), or the data URI / URL of a
    JSON or text `image` (fetched only once the style is known to take a photo); neither for a text-to-image
    style."""
    settings = runtime.settings
    tmp_dir = settings.var_dir / "tmp"
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        data = await uploads.read_json(request, settings.max_image_bytes)
        try:
            body = JobRequest.model_validate(data)
        except ValidationError as exc:
            raise validation_problem(exc) from None
        return JobFields.model_validate(body.model_dump(exclude={"image"})), None, body.image
    if ctype == "multipart/form-data":
        form, upload = await uploads.receive_form(request, tmp_dir, settings.max_image_bytes, digest=digest)
        try:
            if upload is None:
                body = JobRequest.model_validate(form)  # `image` as a text field: an URL or a data URI
                return JobFields.model_validate(body.model_dump(exclude={"image"})), None, body.image
            return JobFields.model_validate(form), upload, None
        except BaseException as exc:
            if upload is not None:
                upload.path.unlink(missing_ok=True)
            if isinstance(exc, ValidationError):
                raise validation_problem(exc) from None
            raise
    raise Problem(
        415,
        "unsupported_content_type",
        "Unsupported media type",
        "Send application/json or multipart/form-data.",
    )


async def _replay_or_conflict(runtime: Runtime, client: ClientToken, key: str, req_hash: str) -> Response | None:
    async with runtime.db.session() as session:
        existing = await find_idempotent(session, client.id or 0, key)
    if existing is None:
        return None
    if existing.request_hash != req_hash:
        raise Problem(
            409,
            "idempotency_conflict",
            "Conflict",
            "This Idempotency-Key was used with a different request.",
        )
    return await _accepted(runtime, existing, replayed=True)


async def _accepted(runtime: Runtime, job: Job, *, replayed: bool = False) -> Response:
    view = await job_view(runtime, job)
    body = view.model_dump(mode="json", include={"id", "status", "status_url", "page_url", "qr_url", "created_at"})
    headers = {"Location": view.status_url}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=202, headers=headers)


async def submit_job(request: Request) -> Response:
    runtime = context.runtime(request)
    client = await require_client(request)
    await enforce(context.limiter(request), runtime.settings.submit_rate_limit, "submit", f"token:{client.id}",
                  "Too many submissions for this token; slow down.")  # fmt: skip
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= IDEMPOTENCY_KEY_MAX):
        raise validation_error(f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters.")

    # The photo's hash only tells a replay from a conflict: without an Idempotency-Key nothing needs it (half a
    # millisecond of CPU per megabyte, and no hash of a guest's request is kept for nothing).
    fields, raw, image_ref = await _parse(request, runtime, digest=key is not None)
    try:
        owner = resolve_owner(client, fields.event_id, fields.user_id)
        styles = context.styles(request)
        guest = Guest(fields.guest_id, str(fields.email) if fields.email else None, fields.phone, fields.consent)
        asked = Submission(
            style_id=fields.style, aspect_ratio=fields.aspect_ratio, resolution=fields.resolution,
            output_format=fields.output_format, owner=owner, token_id=client.id, guest=guest,
            default_provider=context.providers(request).live.slot, has_photo=raw is not None or image_ref is not None,
        )  # fmt: skip
        if image_ref is not None:  # no download for a style that would refuse the photo
            style = await styles.get(runtime.db, fields.style)
            check_style_photo(style, runtime.settings, has_photo=True, default_provider=asked.default_provider)
            settings = runtime.settings
            raw = await uploads.save_image_field(
                image_ref, runtime.fetcher, settings.var_dir / "tmp", settings.max_image_bytes, digest=key is not None
            )
        # hash what the request means, not how it was spelled: a kiosk naming its own event_id or leaving it out
        # is the same request (a retry must replay, not conflict)
        req_hash = None
        if key is not None:
            req_hash = request_hash(
                fields.model_copy(update={"event_id": owner[0], "user_id": owner[1]}), raw.sha256 if raw else None
            )
        try:
            plan = await plan_submission(styles, runtime.db, runtime.settings, asked)
        except Problem:
            # a retry of an accepted request replays even if its style changed since (the statement below, which
            # also answers replays, is not reached): one look-up, on this refusal path only
            if key is not None and req_hash and (replay := await _replay_or_conflict(runtime, client, key, req_hash)):
                return replay
            raise
        # What is cheap and decisive is checked here (type 415, header dimensions 422); decoding, orientation,
        # metadata stripping and the downscale are the submit step's (`Engine.prepare_input`).
        fmt = inspect(raw.path, runtime.settings.max_image_pixels)[0] if raw is not None else None
        try:
            job = await create_job(
                runtime.db, runtime.storage, runtime.bus, runtime.settings, plan, raw.path if raw else None,
                extension=fmt.extension if fmt else "", content_type=fmt.content_type if fmt else None,
                idempotency_key=key, req_hash=req_hash, as_uploaded=True,
            )  # fmt: skip
        except IdempotencyKeyUsed:
            assert key is not None and req_hash is not None
            replay = await _replay_or_conflict(runtime, client, key, req_hash)
            if replay is None:  # pragma: no cover - the winner's row must exist
                raise
            return replay
    finally:
        if raw is not None:
            raw.path.unlink(missing_ok=True)
    with bind(job_id=job.id, event_id=job.event_id):
        log.info("job accepted", extra={"style": job.style_id})
    return await _accepted(runtime, job)


def request_hash(fields: JobFields, image_sha256: str | None) -> str:
    """What the request means (fields and the photo's hash): a retry with the same Idempotency-Key must match it."""
    canonical = json.dumps({**fields.model_dump(mode="json"), "image": image_sha256}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 If-None-Match: `*`, or any listed tag equal to ours under weak comparison (W/ ignored)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(candidate.strip().removeprefix("W/") == tag for candidate in if_none_match.split(","))


async def get_job(request: Request) -> Response:
    runtime = context.runtime(request)
    client = await require_client(request)
    job = await lookup.job_by_id(runtime.db, request.path_params["job_id"])
    if job is None or not can_see_job(client, job):
        raise not_found("No such job.")
    tag = etag(job)
    headers: dict[str, Any] = {"ETag": tag, "Cache-Control": "no-cache"}
    if not job.job_state.final:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if etag_matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    view = await job_view(runtime, job)
    return JSONResponse(view.model_dump(mode="json"), headers=headers)


routes = [
    Route("/v1/jobs", submit_job, methods=["POST"]),
    Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
]
