"""fal.ai adapter: queue submit with a webhook, status and result through the returned URLs, ED25519 webhooks.

fal's submit answer carries `status_url` / `response_url` / `cancel_url`; for `fal-ai/nano-banana-pro/edit` they
live under `fal-ai/nano-banana-pro/requests/{id}` (no `/edit`), so they are returned in `SubmitResult.meta` for
the caller to persist and are never rebuilt by hand. A webhook with `payload_error` (fal could not attach the
result) is a success that `needs_fetch`: read it with `fetch_status`. fal has no envelope: errors are HTTP
statuses (`errors.classify_fal`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from photobot import jsontext
from photobot.providers import errors
from photobot.providers.base import CallbackEvent, GenerationRequest, PreparedInput, SubmitResult, TaskStatus
from photobot.providers.errors import CallbackMalformed, CallbackUnknownShape, ProviderError
from photobot.providers.inputs import is_public_url
from photobot.providers.models import InvalidParameter, validate_request
from photobot.providers.signatures import JwksCache, verify_fal_signature
from photobot.settings import Settings

log = logging.getLogger(__name__)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error") or body.get("message")
        if isinstance(detail, list):  # pydantic-style validation errors (and content refusals, by their type)
            detail = _detail_text(detail)
        if detail:
            return str(detail)
    return f"HTTP {response.status_code}"


def _detail_text(entries: list[Any]) -> str:
    """fal's list of error objects as one line; a content refusal keeps its type, so it is recognised as one."""
    parts = []
    for entry in entries:
        if isinstance(entry, dict):
            kind = entry.get("type")
            text = str(entry.get("msg", entry))
            parts.append(f"{text} [{kind}]" if kind == errors.CONTENT_POLICY_TYPE else text)
        else:
            parts.append(str(entry))
    return "; ".join(parts)


def _refused(detail: Any) -> bool:
    """Whether a fal error detail (a list of error objects) names a content policy violation."""
    entries = detail if isinstance(detail, list) else []
    return any(isinstance(e, dict) and e.get("type") == errors.CONTENT_POLICY_TYPE for e in entries)


def _image_urls(payload: Any) -> tuple[str, ...]:
    images = payload.get("images") if isinstance(payload, dict) else None
    urls = [img.get("url") for img in (images if isinstance(images, list) else ()) if isinstance(img, dict)]
    return tuple(u for u in urls if isinstance(u, str) and u)


def parse_fal_webhook(body: bytes) -> CallbackEvent:
    """A fal.ai webhook body as a CallbackEvent; CallbackMalformed / CallbackUnknownShape otherwise."""
    try:
        payload = jsontext.loads(body)
    except jsontext.JSONRefused as exc:
        raise CallbackMalformed(f"webhook body refused: {exc.reason}") from None
    if not isinstance(payload, dict):
        raise CallbackMalformed("webhook body is not a JSON object")
    request_id = payload.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise CallbackUnknownShape("webhook has no request_id")
    status = payload.get("status")
    if status == "OK":
        if payload.get("payload_error") or payload.get("payload") is None:
            return CallbackEvent(request_id, "success", needs_fetch=True, raw=payload)
        urls = _image_urls(payload.get("payload"))
        return CallbackEvent(request_id, "success", urls, needs_fetch=not urls, raw=payload)
    if status == "ERROR":
        inner = payload.get("payload")
        inner_detail = inner.get("detail") if isinstance(inner, dict) else None
        detail = payload.get("error") or inner_detail
        if isinstance(detail, list):
            detail = _detail_text(detail)
        code = errors.CONTENT_POLICY_TYPE if _refused(inner_detail) else "ERROR"
        return CallbackEvent(request_id, "fail", fail_code=code, fail_message=errors.safe_message(detail or ""),
                             raw=payload)  # fmt: skip
    raise CallbackUnknownShape(f"webhook status {str(status)[:20]!r} is unknown")


class FalProvider:
    name = "fal"

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        *,
        jwks: JwksCache | None = None,
        model: str | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.queue_url = settings.fal_queue_url.rstrip("/")
        self.rest_url = settings.fal_rest_url.rstrip("/")
        self.model = model or settings.fal_model
        self.jwks = jwks or JwksCache(client, settings.fal_jwks_url)
        self._timeout = httpx.Timeout(settings.provider_timeout_s, connect=settings.provider_connect_timeout_s)

    def __repr__(self) -> str:
        return f"FalProvider(queue_url={self.queue_url!r}, model={self.model!r})"

    async def _request(self, method: str, url: str, key: str | None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Key {key}"
        try:
            async with asyncio.timeout(self.settings.provider_timeout_s):
                response = await self.client.request(method, url, headers=headers, timeout=self._timeout, **kwargs)
        except TimeoutError as exc:
            raise errors.network_error(httpx.TimeoutException("whole-call timeout")) from exc
        except httpx.HTTPError as exc:
            raise errors.network_error(exc) from None
        if response.status_code >= 400:
            retry_after = response.headers.get("retry-after")
            raise errors.classify_fal(
                response.status_code,
                _detail(response),
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        return response

    async def _json(self, method: str, url: str, key: str | None, **kwargs: Any) -> dict[str, Any]:
        response = await self._request(method, url, key, **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise errors.bad_response(f"fal.ai answered non-JSON (HTTP {response.status_code})") from None
        if not isinstance(body, dict):
            raise errors.bad_response("fal.ai answered a non-object")
        return body

    def build_input(self, req: GenerationRequest) -> dict[str, Any]:
        try:
            _spec, params = validate_request(req, provider="fal")
        except InvalidParameter as exc:
            raise errors.invalid_request(exc.field, exc.message) from None
        body: dict[str, Any] = {
            "prompt": req.prompt,
            "image_urls": list(req.image_urls),
            "num_images": 1,
            "aspect_ratio": params.aspect_ratio,
            "output_format": params.output_format,
        }
        if params.resolution:
            body["resolution"] = params.resolution
        for name in ("seed", "safety_tolerance"):
            if name in req.extra:
                body[name] = req.extra[name]
        return body

    async def submit(self, req: GenerationRequest, key: str) -> SubmitResult:
        url = f"{self.queue_url}/{req.model}"
        if req.callback_url:
            url += "?fal_webhook=" + quote(req.callback_url, safe="")
        body = await self._json("POST", url, key, json=self.build_input(req))
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise errors.bad_response("fal submit answered without request_id")
        meta = {name: body[name] for name in ("status_url", "response_url", "cancel_url") if body.get(name)}
        if "status_url" not in meta or "response_url" not in meta:
            raise errors.bad_response("fal submit answered without status/response URLs")
        return SubmitResult(task_id=request_id, meta=meta)

    async def fetch_status(self, task_id: str, meta: Mapping[str, Any], key: str) -> TaskStatus:
        status_url, response_url = meta.get("status_url"), meta.get("response_url")
        if not status_url or not response_url:
            raise ProviderError(errors.BAD_RESPONSE, "job meta lacks fal status/response URLs", transient=False)
        status = await self._json("GET", str(status_url), key)
        state = status.get("status")
        if state == "IN_QUEUE":
            return TaskStatus("pending", raw=status)
        if state == "IN_PROGRESS":
            return TaskStatus("running", raw=status)
        if state != "COMPLETED":
            raise errors.bad_response(f"fal status {str(state)[:20]!r} is unknown")
        if status.get("error"):
            return TaskStatus("fail", fail_code="ERROR", fail_message=errors.safe_message(status["error"]), raw=status)
        try:
            result = await self._json("GET", str(response_url), key)
        except ProviderError as exc:
            if exc.provider_code in (400, 422, 500) and not exc.key_effect:
                return TaskStatus("fail", fail_code=str(exc.provider_code), fail_message=exc.message, raw=status)
            raise
        urls = _image_urls(result)
        if not urls:
            return TaskStatus("fail", fail_code="NO_IMAGES", fail_message="result has no images", raw=result)
        return TaskStatus("success", urls, raw=result)

    def parse_callback(self, body: bytes) -> CallbackEvent:
        return parse_fal_webhook(body)

    async def verify_callback(self, body: bytes, headers: Mapping[str, str]) -> None:
        await verify_fal_signature(self.jwks, body, headers)

    async def prepare_input(
        self,
        url: str | None,
        key: str,
        *,
        data: bytes | None = None,
        filename: str = "input.jpg",
        content_type: str = "image/jpeg",
    ) -> PreparedInput:
        if url and await is_public_url(url, allow_private_networks=self.settings.allow_private_networks):
            return PreparedInput(url, "signed")
        if data is None:
            raise errors.invalid_request("image", "input URL is not reachable and no bytes were given")
        return PreparedInput(await self.upload(data, key, filename=filename, content_type=content_type), "uploaded")

    async def upload(self, data: bytes, key: str, *, filename: str, content_type: str) -> str:
        """fal storage: initiate (get a signed upload URL) then PUT the bytes; returns the file URL."""
        init = await self._json(
            "POST",
            f"{self.rest_url}/storage/upload/initiate?storage_type=fal-cdn-v3",
            key,
            json={"content_type": content_type, "file_name": filename},
        )
        upload_url, file_url = init.get("upload_url"), init.get("file_url")
        if not isinstance(upload_url, str) or not isinstance(file_url, str):
            raise errors.bad_response("fal upload initiate answered without upload_url/file_url")
        await self._request("PUT", upload_url, None, content=data, headers={"Content-Type": content_type})
        return file_url
