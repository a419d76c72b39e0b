"""Provider callbacks: `POST /webhooks/kie?token=…` and `POST /webhooks/fal?token=…`.

The order of checks is chosen so that a forged or abusive request costs as little as possible and changes
nothing: rate limit by address → token (signature, expiry, provider; 401) → body size (413) → provider
signature (kie HMAC when configured, fal ED25519 always; 401) → parse (400 malformed / 422 unknown shape) →
rate limit by job → the database transaction. Inside the request there is no network I/O: the callback is
recorded (unique per provider, task and outcome), the job moves with a conditional update, a dispatcher is
woken, and we answer 200 `{"code":200,"msg":"success"}`. Duplicates, late and unknown callbacks also get 200
(so providers stop retrying) and change nothing. A callback is a hint: the finish step confirms the result
with the provider before trusting it.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.jobs.callback_tokens import BadToken
from photobot.jobs.states import transition
from photobot.jobs.steps import fail_job, publish_job
from photobot.jobs.wiring import Providers
from photobot.logs import bind
from photobot.models import Job, JobState, WebhookEvent, utcnow
from photobot.problems import Problem
from photobot.providers.base import CallbackEvent
from photobot.providers.errors import CallbackMalformed, CallbackRejected, SignatureInvalid
from photobot.ratelimit import client_address
from photobot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
OK_BODY = {"code": 200, "msg": "success"}


def _unauthorized() -> Problem:
    # Deliberately the same answer for a missing, forged, expired or cross-provider token, and a bad signature.
    return Problem(401, "unauthorized", "Unauthorized", "The callback could not be authenticated.")


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Problem(413, "payload_too_large", "Payload too large", "Callback bodies are limited to 256 KB.")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_BODY_BYTES:
                raise Problem(413, "payload_too_large", "Payload too large", "Callback bodies are limited to 256 KB.")
    except ClientDisconnect:
        raise Problem(400, "client_disconnected", "Bad request", "The body ended early.") from None
    return bytes(body)


async def _rate_limit(runtime: Runtime, limit: str, scope: str, key: str) -> None:
    decision = await runtime.limiter.hit(limit, scope, key)
    if not decision.allowed:
        raise Problem(
            429, "rate_limited", "Too many requests", "Too many callbacks.",
            headers={"Retry-After": str(decision.retry_after_s)},
        )  # fmt: skip


def _insert_ignore(dialect: str) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(WebhookEvent)


async def receive(request: Request, provider_name: str) -> Response:
    runtime: Runtime = request.app.state.runtime
    providers: Providers = request.app.state.providers
    await _rate_limit(
        runtime, runtime.settings.callback_rate_limit, f"callback-ip:{provider_name}", client_address(request)
    )
    try:
        claim = providers.tokens.verify(request.query_params.get("token"), provider_name)
    except BadToken as exc:
        log.warning("callback refused: bad token", extra={"provider": provider_name, "reason": str(exc)})
        request.state.callback_outcome = "expired" if str(exc) == "expired" else "forged"  # for metrics
        raise _unauthorized() from None
    body = await _read_body(request)
    slot = providers.get(provider_name)
    try:
        await slot.adapter.verify_callback(body, request.headers)
    except SignatureInvalid:
        log.warning("callback refused: bad signature", extra={"provider": provider_name, "job_id": claim.job_id})
        raise _unauthorized() from None
    except CallbackMalformed:  # the kie HMAC check reads the task id from the body: not JSON is a 400, not a 500
        raise Problem(400, "malformed_json", "Bad request", "The body is not valid JSON.") from None
    try:
        event = slot.adapter.parse_callback(body)
    except CallbackMalformed:
        raise Problem(400, "malformed_json", "Bad request", "The body is not valid JSON.") from None
    except CallbackRejected as exc:
        raise Problem(422, "unknown_callback_shape", "Invalid callback", str(exc)[:200]) from None
    await _rate_limit(runtime, runtime.settings.callback_job_rate_limit, f"callback-job:{provider_name}", claim.job_id)
    with bind(job_id=claim.job_id, task_id=event.task_id):
        outcome = await record(runtime, provider_name, claim.job_id, event)
        log.info("callback %s", outcome, extra={"provider": provider_name, "outcome": event.outcome})
    request.state.callback_outcome = outcome
    return JSONResponse(OK_BODY)


async def record(runtime: Runtime, provider: str, job_id: str, event: CallbackEvent) -> str:
    """Apply a verified callback in one transaction; returns what happened (for logs and metrics)."""
    db = runtime.db
    async with db.session() as session:
        job = await session.get(Job, job_id)
        if job is None:
            return "unknown"
        other = (
            await session.execute(
                sa.select(Job.id).where(
                    Job.provider == job.provider, Job.provider_task_id == event.task_id, Job.id != job_id
                )
            )
        ).first()
        if other is not None:  # this job's token with another job's task: somebody is mixing them up
            raise Problem(403, "forbidden", "Forbidden", "The callback could not be matched.")
        if job.provider_task_id and job.provider_task_id != event.task_id:
            # A task no job of ours tracks, e.g. from an earlier submit attempt of this job whose answer was
            # lost: answer 200 so the provider stops retrying, and change nothing.
            return "unknown"
        inserted = await session.execute(
            _insert_ignore(db.dialect)
            .values(
                provider=provider, task_id=event.task_id, outcome=event.outcome, job_id=job_id,
                received_at=utcnow(), payload=_trim(event.raw),
            )
            .on_conflict_do_nothing(index_elements=["provider", "task_id", "outcome"])
        )  # fmt: skip
        if inserted.rowcount == 0:  # type: ignore[attr-defined]
            return "duplicate"
        if JobState(job.state).final:
            return "late"
        now = utcnow()
        if event.outcome == "success":
            meta = dict(job.provider_meta)
            if event.needs_fetch:
                meta["needs_fetch"] = True
            moved = await transition(
                session, job_id, [JobState.submitting, JobState.waiting], JobState.finishing,
                provider_task_id=job.provider_task_id or event.task_id, callback_at=now, next_attempt_at=now,
                result_urls=list(event.result_urls), provider_meta=meta, attempts=0,
            )  # fmt: skip
            outcome = "accepted" if moved else "ignored"
        else:
            code = (
                "provider_generation_failed"
                if event.fail_code in (None, "", "500", "501")
                else (f"provider_failed_{event.fail_code}"[:64])
            )
            if not job.provider_task_id:
                await session.execute(
                    sa.update(Job).where(Job.id == job_id).values(provider_task_id=event.task_id, callback_at=now)
                )
            won = await fail_job(
                session, job_id, code, event.fail_message or "The provider could not make the photo.",
                [JobState.submitting, JobState.waiting], settings=runtime.settings,
            )  # fmt: skip
            outcome = "accepted" if won else "ignored"
    if outcome == "accepted":
        await runtime.bus.wake()
        if event.outcome == "fail":
            await publish_job(runtime, job, JobState.failed)
    return outcome


def _trim(payload: dict[str, Any]) -> dict[str, Any]:
    """Keep the stored payload small and free of anything secret-looking (it is for operators' eyes)."""
    data = payload.get("data") if isinstance(payload.get("data"), dict) else payload
    keep = ("taskId", "task_id", "request_id", "state", "status", "failCode", "failMsg", "code", "msg", "model")
    return {k: data[k] for k in keep if k in data}


async def kie_callback(request: Request) -> Response:
    return await receive(request, "kie")


async def fal_callback(request: Request) -> Response:
    return await receive(request, "fal")


routes = [
    Route("/webhooks/kie", kie_callback, methods=["POST"]),
    Route("/webhooks/fal", fal_callback, methods=["POST"]),
]
