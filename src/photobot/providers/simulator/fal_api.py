"""A small fal.ai queue as the simulator serves it: submit with ?fal_webhook=, status, result, storage, JWKS.

Status and result URLs follow fal's shape for nano-banana-pro/edit: `{queue}/{owner}/{app}/requests/{id}` (the
`/edit` path segment is dropped), so an adapter that rebuilds URLs by hand fails here as it would at fal.
Webhooks are signed with an ED25519 key whose public half is served at `/fal/.well-known/jwks.json`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from typing import Any

import httpx
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from photobot.providers.signatures import fal_message
from photobot.providers.simulator.imaging import stylise_again
from photobot.providers.simulator.kie_api import base_url, state_of
from photobot.providers.simulator.state import SimState


def _authorised(sim: SimState, request: Request) -> bool:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme != "Key" or not key:
        return False
    return sim.config.fal_keys is None or key in sim.config.fal_keys


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def queue(request: Request) -> Response:
    """Every /fal/queue/... route: submit (POST {model}), status (GET …/status), result (GET …), cancel (PUT)."""
    sim = state_of(request)
    if not _authorised(sim, request):
        return _error(401, "Unauthorized")
    parts = request.path_params["path"].strip("/").split("/")
    if request.method == "POST":
        return await _submit(sim, request, "/".join(parts))
    if len(parts) >= 4 and parts[2] == "requests":
        item = sim.fal_requests.get(parts[3])
        if item is None:
            return _error(404, "Request not found")
        if parts[4:] == ["status"]:
            done = item["status"] == "COMPLETED"
            body: dict[str, Any] = {"status": item["status"], "request_id": parts[3]}
            if not done:
                body["queue_position"] = 0
            if item.get("error"):
                body["error"] = item["error"]
            return JSONResponse(body, status_code=200 if done else 202)
        if parts[4:] == ["cancel"] and request.method == "PUT":
            return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)
        if not parts[4:] and request.method == "GET":
            if item["status"] != "COMPLETED":
                return _error(400, "Request is still in progress")
            if item.get("refused"):
                return JSONResponse({"detail": _refusal_detail()}, status_code=422)
            if item.get("error"):
                return _error(422, item["error"])
            return JSONResponse(item["result"])
    return _error(404, "Not found")


async def _submit(sim: SimState, request: Request, model: str) -> Response:
    try:
        body = await request.json()
    except ValueError:
        return _error(422, "body is not JSON")
    if not isinstance(body, dict) or not body.get("prompt") or not body.get("image_urls"):
        return _error(422, "prompt and image_urls are required")
    if body.get("output_format", "png") not in ("jpeg", "png", "webp"):
        return _error(422, "output_format must be jpeg, png or webp")
    request_id = str(uuid.uuid4())
    owner_app = "/".join(model.split("/")[:2])
    root = f"{base_url(sim, request)}/fal/queue/{owner_app}/requests/{request_id}"
    sim.fal_requests[request_id] = {"status": "IN_QUEUE", "result": None, "error": None}
    sim.stats.fal_submits += 1
    sim.spawn(_run(sim, request_id, body, request.query_params.get("fal_webhook"), base_url(sim, request)))
    return JSONResponse({
        "status": "IN_QUEUE", "request_id": request_id, "response_url": root, "status_url": f"{root}/status",
        "cancel_url": f"{root}/cancel", "queue_position": 0,
    })  # fmt: skip


CONTENT_REFUSAL = "The content was flagged by a content checker."


def _refusal_detail() -> list[dict[str, Any]]:
    """fal's documented shape of a content refusal (HTTP 422 body `detail`, or a webhook payload's)."""
    return [{
        "loc": ["body", "image_urls", 0], "msg": CONTENT_REFUSAL, "type": "content_policy_violation",
        "url": "https://docs.fal.ai/errors#content_policy_violation", "input": "", "categories": ["model_moderated"],
    }]  # fmt: skip


async def _run(sim: SimState, request_id: str, body: dict[str, Any], webhook: str | None, base: str) -> None:
    cfg = sim.config
    item = sim.fal_requests[request_id]
    await asyncio.sleep(0)
    item["status"] = "IN_PROGRESS"
    await asyncio.sleep(cfg.callback_delay_s + random.uniform(0, cfg.callback_jitter_s))
    error = None
    if random.random() < cfg.fal_failure_rate:
        error = "Internal error while generating"
    elif random.random() < cfg.fal_content_block_rate:
        error = CONTENT_REFUSAL
        item["refused"] = True
    else:
        try:
            assert sim.http is not None
            response = await sim.http.get(body["image_urls"][0], timeout=15.0)
            response.raise_for_status()
            fmt = body.get("output_format", "png")
            data, content_type = await asyncio.to_thread(
                stylise_again, response.content, body["prompt"], aspect_ratio=body.get("aspect_ratio"),
                resolution=body.get("resolution"), output_format=fmt, long_side=cfg.long_side,
                pad_to=cfg.result_pad_bytes,
            )  # fmt: skip
        except Exception:
            error = "Failed to download or read the input image"
        else:
            name = f"fal/{request_id}.{fmt}"
            sim.store_file(name, data, content_type)
            image = {"url": f"{base}/files/{name}", "content_type": content_type, "file_name": name.split("/")[-1],
                     "file_size": len(data), "width": None, "height": None}  # fmt: skip
            item["result"] = {"images": [image], "description": ""}
    item["status"] = "COMPLETED"
    item["error"] = error
    if webhook and random.random() >= cfg.drop_rate:
        await _send_webhook(sim, request_id, item, webhook)


def webhook_body(sim: SimState, request_id: str, item: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"request_id": request_id, "gateway_request_id": request_id}
    if item.get("refused"):
        body.update(status="ERROR", error="Invalid status code: 422", payload={"detail": _refusal_detail()})
    elif item["error"]:
        body.update(status="ERROR", error=item["error"], payload={"detail": [{"msg": item["error"]}]})
    elif sim.config.fal_payload_error:
        body.update(status="OK", payload=None, payload_error="Response payload too large to be sent")
    else:
        body.update(status="OK", payload=item["result"])
    return body


def sign_webhook(sim: SimState, request_id: str, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    message = fal_message(request_id, sim.config.fal_user_id, ts, body)
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": sim.config.fal_user_id,
        "X-Fal-Webhook-Timestamp": ts,
        "X-Fal-Webhook-Signature": sim.fal_signing_key.sign(message).hex(),
    }


async def _send_webhook(sim: SimState, request_id: str, item: dict[str, Any], url: str) -> None:
    body = json.dumps(webhook_body(sim, request_id, item)).encode()
    for _ in range(max(1, sim.config.duplicate_callbacks)):
        headers = {"Content-Type": "application/json", **sign_webhook(sim, request_id, body)}
        try:
            assert sim.http is not None
            response = await sim.http.post(url, content=body, headers=headers, timeout=15.0)
            ok = response.status_code < 300
        except (httpx.HTTPError, AssertionError):
            ok = False
        sim.stats.fal_webhooks_sent += 1
        if not ok:
            sim.stats.callbacks_failed += 1


def public_jwk(sim: SimState) -> dict[str, str]:
    raw = sim.fal_signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "sim", "use": "sig", "alg": "EdDSA"}


async def jwks(request: Request) -> Response:
    return JSONResponse({"keys": [public_jwk(state_of(request))]})


async def upload_initiate(request: Request) -> Response:
    sim = state_of(request)
    if not _authorised(sim, request):
        return _error(401, "Unauthorized")
    body = await request.json()
    file_id = f"{uuid.uuid4().hex[:12]}-{body.get('file_name') or 'file'}"
    base = base_url(sim, request)
    return JSONResponse({"upload_url": f"{base}/fal/storage/put/{file_id}", "file_url": f"{base}/files/fal/{file_id}"})


async def upload_put(request: Request) -> Response:
    sim = state_of(request)
    data = await request.body()
    sim.store_file(f"fal/{request.path_params['file_id']}", data, request.headers.get("content-type", "image/jpeg"))
    sim.stats.uploads += 1
    return Response(status_code=200)
