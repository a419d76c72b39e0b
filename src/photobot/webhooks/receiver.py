"""Provider callbacks: `POST /webhooks/kie?token=…` and `POST /webhooks/fal?token=…`.

The order of checks is chosen so that a forged or abusive request costs as little as possible and changes
nothing: rate limit by address → token (signature, expiry, provider; 401) → body size (413) → provider
signature (kie HMAC when configured, fal ED25519 always; 401) → parse (400 malformed / 422 unknown shape) →
rate limit by job → `jobs.callbacks.apply_callback` in one transaction. Inside the request there is no network
I/O: the callback is recorded (unique per provider, task and outcome), the job moves with a conditional update,
a dispatcher is woken, and we answer 200 `{"code":200,"msg":"success"}`. Duplicates, late and unknown callbacks
also get 200 (so providers stop retrying) and change nothing. A callback is a hint: the finish step confirms the result
with the provider before trusting it.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.jobs.callbacks import ForeignTask, apply_callback
from photobot.logs import bind
from photobot.problems import Problem
from photobot.providers.errors import CallbackMalformed, CallbackRejected, SignatureInvalid
from photobot.signing import BadToken
from photobot.web import context
from photobot.web.body import malformed_json, read_body
from photobot.web.ratelimit import client_address, enforce

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
OK_BODY = {"code": 200, "msg": "success"}
_OK_JSON = JSONResponse(OK_BODY).body  # rendered once: every accepted, duplicate or late callback gets it


def _unauthorized() -> Problem:
    # Deliberately the same answer for a missing, forged, expired or cross-provider token, and a bad signature.
    return Problem(401, "unauthorized", "Unauthorized", "The callback could not be authenticated.")


async def receive(request: Request, provider_name: str) -> Response:
    runtime, providers, limiter = context.runtime(request), context.providers(request), context.limiter(request)
    settings = runtime.settings
    await enforce(limiter, settings.callback_rate_limit, f"callback-ip:{provider_name}", client_address(request),
                  "Too many callbacks.", shared=False)  # fmt: skip
    try:
        claim = providers.tokens.verify(request.query_params.get("token"), provider_name)
    except BadToken as exc:
        log.warning("callback refused: bad token", extra={"provider": provider_name, "reason": str(exc)})
        request.state.callback_outcome = "expired" if str(exc) == "expired" else "forged"  # for metrics
        raise _unauthorized() from None
    body = await read_body(request, MAX_BODY_BYTES, what="Callback bodies")
    slot = providers.get(provider_name)
    try:
        await slot.adapter.verify_callback(body, request.headers)
    except SignatureInvalid:
        log.warning("callback refused: bad signature", extra={"provider": provider_name, "job_id": claim.job_id})
        raise _unauthorized() from None
    except CallbackMalformed:  # the kie HMAC check reads the task id from the body: not JSON is a 400, not a 500
        raise malformed_json() from None
    try:
        event = slot.adapter.parse_callback(body)
    except CallbackMalformed:
        raise malformed_json() from None
    except CallbackRejected as exc:
        raise Problem(422, "unknown_callback_shape", "Invalid callback", str(exc)[:200]) from None
    # deferred: a job's first callback in this process costs no Redis round trip (ratelimit.py says how a flood
    # for one job is still counted across processes)
    await enforce(limiter, settings.callback_job_rate_limit, f"callback-job:{provider_name}", claim.job_id,
                  "Too many callbacks.", defer_first=True)  # fmt: skip
    with bind(job_id=claim.job_id, task_id=event.task_id):
        try:
            outcome = await apply_callback(runtime.db, runtime.bus, settings, provider_name, claim.job_id, event)
        except ForeignTask:
            raise Problem(403, "forbidden", "Forbidden", "The callback could not be matched.") from None
        log.info("callback %s", outcome, extra={"provider": provider_name, "outcome": event.outcome})
    request.state.callback_outcome = outcome
    return Response(_OK_JSON, media_type="application/json")


async def kie_callback(request: Request) -> Response:
    return await receive(request, "kie")


async def fal_callback(request: Request) -> Response:
    return await receive(request, "fal")


routes = [
    Route("/webhooks/kie", kie_callback, methods=["POST"]),
    Route("/webhooks/fal", fal_callback, methods=["POST"]),
]
