"""kie.ai's API as the simulator serves it: createTask, recordInfo, credit, uploads, callbacks.

The simulator keeps its own copy of the per-model rules (not `providers/models.py`), so the adapter's contract
tests check our table against an independent one: sending `image_urls` to nano-banana-pro or `jpeg` to
nano-banana-pro is a 422 here, as it would be at kie.ai.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from typing import Any, cast

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from photobot.providers.signatures import kie_signature
from photobot.providers.simulator.imaging import stylise_again
from photobot.providers.simulator.state import SimState

# model → (image field, required, max images, prompt max, formats)
MODELS: dict[str, tuple[str | None, bool, int, int, tuple[str, ...]]] = {
    "nano-banana-pro": ("image_input", False, 8, 10000, ("png", "jpg")),
    "google/nano-banana": (None, False, 0, 5000, ("png", "jpeg")),
    "google/nano-banana-edit": ("image_urls", True, 10, 5000, ("png", "jpeg")),
    "nano-banana-2": ("image_input", False, 14, 20000, ("jpg", "png")),
}
_MESSAGES = {
    200: "success", 401: "You do not have access permissions", 402: "Credits insufficient", 404: "Not found",
    408: "Upstream timeout", 422: "Validation error", 429: "Rate limited", 433: "Sub-key usage exceeds limit",
    455: "Service unavailable: maintenance", 500: "Internal server error", 501: "Generation failed",
    505: "Feature disabled",
}  # fmt: skip


def state_of(request: Request) -> SimState:
    return cast(SimState, request.app.state.sim)


def envelope(sim: SimState, code: int, data: Any = None, msg: str | None = None) -> JSONResponse:
    body = {"code": code, sim.config.msg_field: msg or _MESSAGES.get(code, "error"), "data": data}
    status = code if sim.config.http_status == "mirror" and 200 <= code <= 599 else 200
    return JSONResponse(body, status_code=status)


def base_url(sim: SimState, request: Request) -> str:
    return (sim.config.result_host or sim.base_url or str(request.base_url)).rstrip("/")


def bearer(sim: SimState, request: Request) -> str | None:
    """The caller's key, or None when the Authorization header is missing or the key is not accepted."""
    auth = request.headers.get("authorization", "")
    scheme, _, key = auth.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    if sim.config.valid_keys is not None and key not in sim.config.valid_keys:
        return None
    return key


def _validate(body: Any) -> str | None:
    """The 422 message for a createTask body, or None when it is acceptable."""
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        return "body must have model and input"
    rules = MODELS.get(str(body.get("model")))
    if rules is None:
        return "model is not supported"
    field, required, max_images, prompt_max, formats = rules
    inputs = body["input"]
    prompt = inputs.get("prompt")
    if not isinstance(prompt, str) or not prompt or len(prompt) > prompt_max:
        return f"prompt is required and at most {prompt_max} characters"
    for other in ("image_input", "image_urls"):
        if other != field and other in inputs:
            return f"{other} is not a parameter of {body['model']}"
    images = inputs.get(field) if field else None
    if required and not images:
        return f"{field} is required"
    if images is not None and (not isinstance(images, list) or len(images) > max_images):
        return f"{field} must be a list of at most {max_images} URLs"
    if "output_format" in inputs and inputs["output_format"] not in formats:
        return f"output_format must be one of {', '.join(formats)}"
    return None


async def create_task(request: Request) -> Response:
    sim = state_of(request)
    cfg = sim.config
    key = bearer(sim, request)
    if key is None:
        return envelope(sim, 401)
    sim.stats.create_calls[key] += 1
    if cfg.create_delay_s:
        await asyncio.sleep(cfg.create_delay_s)
    if cfg.maintenance:
        return envelope(sim, 455)
    if cfg.burst_429 > 0:
        cfg.burst_429 -= 1
        sim.stats.rate_limited += 1
        return envelope(sim, 429)
    if not sim.rate_ok(key):
        sim.stats.rate_limited += 1
        return envelope(sim, 429)
    if cfg.next_codes:
        code = int(cfg.next_codes.pop(0))
        if code != 200:
            if code == 429:
                sim.stats.rate_limited += 1
            return envelope(sim, code)
    if key in cfg.exhausted_keys or sim.balance(key) < cfg.task_cost:
        return envelope(sim, 402)
    if key in cfg.limited_keys:
        return envelope(sim, 433)
    try:
        body = await request.json()
    except ValueError:
        return envelope(sim, 422, msg="body is not JSON")
    problem = _validate(body)
    if problem:
        return envelope(sim, 422, msg=problem)
    now_ms = int(time.time() * 1000)
    if cfg.task_id_style == "named":
        task_id = f"task_{body['model'].replace('/', '-')}_{now_ms}{random.randint(100, 999)}"
    else:
        task_id = uuid.uuid4().hex
    sim.tasks[task_id] = {
        "taskId": task_id, "model": body["model"], "state": "waiting", "param": json.dumps(body),
        "resultJson": "", "failCode": "", "failMsg": "", "costTime": 0, "createTime": now_ms,
        "updateTime": now_ms, "completeTime": None, "key": key,
    }  # fmt: skip
    sim.stats.tasks_created += 1
    sim.spawn(_run_task(sim, task_id, body, base_url(sim, request)))
    return envelope(sim, 200, {"taskId": task_id})


CONTENT_REFUSAL_CODE = "422"
CONTENT_REFUSAL_MESSAGE = "Your request was rejected: the image contains prohibited content (sensitive content check)."


async def _run_task(sim: SimState, task_id: str, body: dict[str, Any], base: str) -> None:
    cfg = sim.config
    task = sim.tasks[task_id]
    await asyncio.sleep(0)
    task["state"] = "generating"
    await asyncio.sleep(cfg.callback_delay_s + random.uniform(0, cfg.callback_jitter_s))
    inputs = body["input"]
    images = inputs.get("image_input") or inputs.get("image_urls") or []
    fail: tuple[str, str] | None = None
    result_url = None
    if random.random() < cfg.failure_rate:
        fail = ("500", "Internal server error")
    elif random.random() < cfg.content_block_rate:
        fail = (CONTENT_REFUSAL_CODE, CONTENT_REFUSAL_MESSAGE)
    else:
        source = None
        if images:
            try:
                assert sim.http is not None
                response = await sim.http.get(images[0], timeout=15.0)
                response.raise_for_status()
                source = response.content
            except (httpx.HTTPError, AssertionError):
                fail = ("400", "Failed to download the input image")
        if fail is None:
            try:
                data, content_type = await asyncio.to_thread(
                    stylise_again, source, inputs.get("prompt", ""),
                    aspect_ratio=inputs.get("aspect_ratio") or inputs.get("image_size"),
                    resolution=inputs.get("resolution"), output_format=inputs.get("output_format", "png"),
                    long_side=cfg.long_side, pad_to=cfg.result_pad_bytes,
                )  # fmt: skip
            except Exception:  # not an image
                fail = ("400", "The input is not a supported image")
            else:
                ext = {"image/jpeg": "jpg", "image/webp": "webp"}.get(content_type, "png")
                name = f"results/{task_id}.{ext}"
                sim.store_file(name, data, content_type)
                result_url = f"{base}/files/{name}"
    now_ms = int(time.time() * 1000)
    task.update(updateTime=now_ms, completeTime=now_ms, costTime=now_ms - task["createTime"])
    if fail:
        task.update(state="fail", failCode=fail[0], failMsg=fail[1], resultJson="")
    else:
        task.update(state="success", resultJson=json.dumps({"resultUrls": [result_url]}))
        sim.balances[task["key"]] = sim.balance(task["key"]) - cfg.task_cost
    callback = body.get("callBackUrl")
    if callback:
        await _send_callback(sim, task, callback)


def callback_payload(sim: SimState, task: dict[str, Any]) -> dict[str, Any]:
    ok = task["state"] == "success"
    data = {k: v for k, v in task.items() if k != "key"}
    data["resultJson"] = task["resultJson"] if ok else None
    data["failMsg"] = None if ok else task["failMsg"]
    if sim.config.credit_fields == "new":
        data["creditsConsumed"] = sim.config.task_cost if ok else 0
    else:
        data["consumeCredits"] = sim.config.task_cost if ok else 0
        data["remainedCredits"] = sim.balance(task["key"])
    code = 200 if ok else 501
    message = "Playground task completed successfully." if ok else _MESSAGES[code]
    return {"code": code, sim.config.msg_field: message, "data": data}


async def _send_callback(sim: SimState, task: dict[str, Any], url: str) -> None:
    cfg = sim.config
    if random.random() < cfg.drop_rate:
        sim.stats.callbacks_dropped += 1
        return
    body = json.dumps(callback_payload(sim, task)).encode()
    for _ in range(max(1, cfg.duplicate_callbacks)):
        headers = {"Content-Type": "application/json"}
        if cfg.hmac_key:
            ts = int(time.time())
            headers["X-Webhook-Timestamp"] = str(ts)
            headers["X-Webhook-Signature"] = kie_signature(cfg.hmac_key, task["taskId"], ts)
        try:
            assert sim.http is not None
            response = await sim.http.post(url, content=body, headers=headers, timeout=15.0)
            ok = response.status_code < 300
        except (httpx.HTTPError, AssertionError):
            ok = False
        sim.stats.callbacks_sent += 1
        if not ok:
            sim.stats.callbacks_failed += 1


async def record_info(request: Request) -> Response:
    sim = state_of(request)
    if bearer(sim, request) is None:
        return envelope(sim, 401)
    sim.stats.record_calls += 1
    task_id = request.query_params.get("taskId")
    if not task_id:
        return envelope(sim, 400, msg="taskId is required")
    task = sim.tasks.get(task_id)
    if task is None:
        return envelope(sim, 404, msg="Task not found")
    data = {k: v for k, v in task.items() if k != "key"}
    return envelope(sim, 200, data)


async def credit(request: Request) -> Response:
    sim = state_of(request)
    key = bearer(sim, request)
    if key is None:
        return envelope(sim, 401)
    sim.stats.credit_calls += 1
    return envelope(sim, 200, sim.balance(key))


def _upload_answer(sim: SimState, request: Request, data: bytes, name: str, path: str, mime: str) -> Response:
    file_id = f"uploads/{path.strip('/') or 'files'}/{uuid.uuid4().hex[:12]}-{name}"
    sim.store_file(file_id, data, mime)
    sim.stats.uploads += 1
    info = {
        "fileName": name, "filePath": file_id, "downloadUrl": f"{base_url(sim, request)}/files/{file_id}",
        "fileSize": len(data), "mimeType": mime, "uploadedAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
    }  # fmt: skip
    return JSONResponse(
        {"success": True, "code": 200, sim.config.msg_field: "File uploaded successfully", "data": info}
    )


async def upload_stream(request: Request) -> Response:
    sim = state_of(request)
    if bearer(sim, request) is None:
        return envelope(sim, 401)
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return envelope(sim, 400, msg="file is required")
    data = await upload.read()
    name = str(form.get("fileName") or upload.filename or "file")
    mime = upload.content_type or "application/octet-stream"
    return _upload_answer(sim, request, data, name, str(form.get("uploadPath") or ""), mime)


async def upload_base64(request: Request) -> Response:
    sim = state_of(request)
    if bearer(sim, request) is None:
        return envelope(sim, 401)
    body = await request.json()
    raw = str(body.get("base64Data") or "")
    mime = "application/octet-stream"
    if raw.startswith("data:"):
        header, _, raw = raw.partition(",")
        mime = header[5:].split(";")[0] or mime
    try:
        data = base64.b64decode(raw, validate=True)
    except ValueError:
        return envelope(sim, 400, msg="base64Data is not base64")
    name = str(body.get("fileName") or f"{uuid.uuid4().hex[:8]}.bin")
    return _upload_answer(sim, request, data, name, str(body.get("uploadPath") or ""), mime)


async def upload_url(request: Request) -> Response:
    sim = state_of(request)
    if bearer(sim, request) is None:
        return envelope(sim, 401)
    body = await request.json()
    try:
        assert sim.http is not None
        response = await sim.http.get(str(body.get("fileUrl")), timeout=15.0)
        response.raise_for_status()
    except (httpx.HTTPError, AssertionError):
        return envelope(sim, 400, msg="Failed to download the file")
    name = str(body.get("fileName") or str(body.get("fileUrl")).rsplit("/", 1)[-1] or "file")
    mime = response.headers.get("content-type", "application/octet-stream").split(";")[0]
    return _upload_answer(sim, request, response.content, name, str(body.get("uploadPath") or ""), mime)


async def serve_file(request: Request) -> Response:
    sim = state_of(request)
    item = sim.files.get(request.path_params["name"])
    if item is None:
        return Response(status_code=404)
    data, content_type = item
    return Response(data, media_type=content_type)
