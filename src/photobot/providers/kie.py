"""kie.ai adapter: createTask, recordInfo, account credit, file upload and callback reading.

Every kie.ai answer is an envelope `{"code", "msg" | "message", "data"}`; the body `code` can disagree with the
HTTP status, so both are checked and the body code wins when it is an error (`_unwrap`). recordInfo's `param`
and `resultJson` are JSON *strings* (empty on failure), parsed defensively. Request bodies are built from the
model table (`models.py`): the image field and the JPEG spelling differ per model. Each call has a 5 s connect
timeout and a 30 s budget for the whole call (`provider_connect_timeout_s` / `provider_timeout_s`).

This class makes exactly one HTTP call per method: retries, key choice and rate limiting belong to
`submit.py`, which composes this adapter with the key pool and the limiter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx

from photobot import jsontext
from photobot.providers import errors
from photobot.providers.base import (
    CallbackEvent,
    GenerationRequest,
    PreparedInput,
    SubmitResult,
    TaskState,
    TaskStatus,
)
from photobot.providers.errors import CallbackMalformed, CallbackUnknownShape, ProviderError
from photobot.providers.inputs import is_public_url
from photobot.providers.models import InvalidParameter, validate_request
from photobot.providers.signatures import TaskIdConflict, kie_signed_task_id, verify_kie_hmac
from photobot.settings import Settings

log = logging.getLogger(__name__)

_STATES: dict[str, TaskState] = {
    "waiting": "pending",
    "queuing": "pending",
    "generating": "running",
    "success": "success",
    "fail": "fail",
}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _code(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def unwrap(response: httpx.Response) -> Any:
    """The `data` of a kie.ai envelope, or the ProviderError that the status and body `code` call for."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if response.status_code >= 400:
            raise errors.classify_kie(response.status_code, f"HTTP {response.status_code}",
                                      retry_after=_retry_after(response))  # fmt: skip
        raise errors.bad_response(f"kie.ai answered a non-envelope body (HTTP {response.status_code})")
    message = str(body.get("msg") or body.get("message") or "")
    code = _code(body.get("code"))
    if code is None or (code == 200 and response.status_code >= 400):
        code = response.status_code
    if code != 200 or body.get("success") is False:
        raise errors.classify_kie(code if code != 200 else 500, message, retry_after=_retry_after(response))
    return body.get("data")


def _json_field(value: Any) -> Any:
    """recordInfo / callback `param` and `resultJson`: a JSON string, "" or null; tolerate a decoded object."""
    if isinstance(value, dict | list):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return jsontext.loads(value)
        except jsontext.JSONRefused:
            return None
    return None


def _result_urls(data: Mapping[str, Any]) -> tuple[str, ...]:
    result = _json_field(data.get("resultJson"))
    urls = result.get("resultUrls") if isinstance(result, dict) else None
    return tuple(u for u in urls or () if isinstance(u, str) and u)


def _fail_code(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def parse_record(data: Any) -> TaskStatus:
    """A recordInfo `data` object as a TaskStatus (unknown states are a bad response)."""
    if not isinstance(data, dict):
        raise errors.bad_response("recordInfo data is not an object")
    state = _STATES.get(str(data.get("state") or ""))
    if state is None:
        raise errors.bad_response(f"recordInfo state {str(data.get('state'))[:30]!r} is unknown")
    urls = _result_urls(data)
    if state == "success" and not urls:
        raise errors.bad_response("recordInfo says success but has no resultUrls")
    return TaskStatus(
        state=state,
        result_urls=urls,
        fail_code=_fail_code(data.get("failCode")) if state == "fail" else None,
        fail_message=(str(data.get("failMsg") or "") or None) if state == "fail" else None,
        raw=data,
    )


def parse_kie_callback(body: bytes) -> CallbackEvent:
    """A kie.ai callback body as a CallbackEvent; CallbackMalformed / CallbackUnknownShape otherwise."""
    try:
        payload = jsontext.loads(body)
    except jsontext.JSONRefused as exc:
        raise CallbackMalformed(f"callback body refused: {exc.reason}") from None
    if not isinstance(payload, dict):
        raise CallbackMalformed("callback body is not a JSON object")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise CallbackUnknownShape("callback has no data object")
    try:
        task_id = kie_signed_task_id(payload)  # the same id the HMAC check covered
    except TaskIdConflict:
        raise CallbackMalformed("callback names more than one task id") from None
    if task_id is None:
        raise CallbackUnknownShape("callback has no taskId")
    state, code = data.get("state"), _code(payload.get("code"))
    if state == "success" or (state is None and code == 200):
        urls = _result_urls(data)
        return CallbackEvent(task_id, "success", urls, needs_fetch=not urls, raw=payload)
    if state == "fail" or (state is None and code is not None and code != 200):
        return CallbackEvent(
            task_id,
            "fail",
            fail_code=_fail_code(data.get("failCode")) or (str(code) if code else None),
            fail_message=str(data.get("failMsg") or payload.get("msg") or payload.get("message") or "") or None,
            raw=payload,
        )
    raise CallbackUnknownShape(f"callback state {str(state)[:30]!r} is unknown")


class KieProvider:
    """kie.ai (and the simulator, which speaks the same API)."""

    name = "kie"

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        *,
        base_url: str | None = None,
        upload_base_url: str | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.base_url = (base_url or settings.kie_base_url).rstrip("/")
        self.upload_base_url = (upload_base_url or settings.kie_upload_base_url).rstrip("/")
        hmac_key = settings.kie_webhook_hmac_key
        self._hmac_key = hmac_key.get_secret_value() if hmac_key else None
        self._timeout = httpx.Timeout(settings.provider_timeout_s, connect=settings.provider_connect_timeout_s)

    def __repr__(self) -> str:
        return f"KieProvider(base_url={self.base_url!r})"

    # --- one HTTP call ---------------------------------------------------------------------------------

    async def _call(self, method: str, url: str, key: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.provider_timeout_s):
                response = await self.client.request(method, url, headers=headers, timeout=self._timeout, **kwargs)
        except TimeoutError as exc:
            raise errors.network_error(httpx.TimeoutException("whole-call timeout")) from exc
        except httpx.HTTPError as exc:
            raise errors.network_error(exc) from None
        try:
            data = unwrap(response)
        except ProviderError as exc:
            log.info("kie %s %s → %s (%s) in %.2fs", method, url.split("?")[0].rsplit("/", 1)[-1],
                     exc.provider_code, exc.code, time.monotonic() - started)  # fmt: skip
            raise
        return data

    # --- the Provider interface ------------------------------------------------------------------------

    def build_body(self, req: GenerationRequest) -> dict[str, Any]:
        """The createTask body for this model (validation first: InvalidParameter → provider_validation)."""
        try:
            spec, params = validate_request(req, provider="kie")
        except InvalidParameter as exc:
            raise errors.invalid_request(exc.field, exc.message) from None
        inputs: dict[str, Any] = {"prompt": req.prompt}
        if spec.image_field and req.image_urls:
            inputs[spec.image_field] = list(req.image_urls)
        inputs["aspect_ratio"] = params.aspect_ratio
        if spec.aspect_alias:
            inputs[spec.aspect_alias] = params.aspect_ratio
        if params.resolution:
            inputs["resolution"] = params.resolution
        inputs["output_format"] = params.output_format
        if req.model == "nano-banana-2" and "google_search" in req.extra:
            inputs["google_search"] = bool(req.extra["google_search"])
        body: dict[str, Any] = {"model": req.model, "input": inputs}
        if req.callback_url:
            body["callBackUrl"] = req.callback_url
        return body

    async def submit(self, req: GenerationRequest, key: str) -> SubmitResult:
        body = self.build_body(req)
        data = await self._call("POST", f"{self.base_url}/api/v1/jobs/createTask", key, json=body)
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise errors.bad_response("createTask answered without a taskId")
        return SubmitResult(task_id=task_id, meta={})

    async def fetch_status(self, task_id: str, meta: Mapping[str, Any], key: str) -> TaskStatus:
        url = f"{self.base_url}/api/v1/jobs/recordInfo"
        return parse_record(await self._call("GET", url, key, params={"taskId": task_id}))

    def parse_callback(self, body: bytes) -> CallbackEvent:
        return parse_kie_callback(body)

    async def verify_callback(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Check the HMAC when PHOTOBOT_KIE_WEBHOOK_HMAC_KEY is set; without a key there is nothing to check."""
        if self._hmac_key:
            verify_kie_hmac(self._hmac_key, body, headers)

    async def prepare_input(
        self,
        url: str | None,
        key: str,
        *,
        data: bytes | None = None,
        filename: str = "input.jpg",
        content_type: str = "image/jpeg",
    ) -> PreparedInput:
        """The signed storage URL when kie can reach it (and mode allows), else a kie file upload."""
        mode = self.settings.kie_input_upload
        if url and mode != "always":
            public = await is_public_url(url, allow_private_networks=self.settings.allow_private_networks)
            if public or mode == "never":
                return PreparedInput(url, "signed")
        if data is None:
            if not url:
                raise errors.invalid_request("image", "no input URL or bytes")
            data = await self._download_own(url)
        return PreparedInput(await self.upload_stream(data, key, filename=filename, content_type=content_type),
                             "uploaded")  # fmt: skip

    # --- kie-specific calls ----------------------------------------------------------------------------

    async def credit(self, key: str) -> float:
        """The account's remaining credits (GET /api/v1/chat/credit)."""
        data = await self._call("GET", f"{self.base_url}/api/v1/chat/credit", key)
        try:
            return float(data)
        except (TypeError, ValueError):
            raise errors.bad_response("credit answer is not a number") from None

    async def upload_stream(
        self,
        data: bytes,
        key: str,
        *,
        filename: str = "input.jpg",
        content_type: str = "image/jpeg",
        upload_path: str = "photobot",
    ) -> str:
        """Upload bytes (multipart stream upload); returns the downloadUrl to use as model input."""
        result = await self._call(
            "POST",
            f"{self.upload_base_url}/api/file-stream-upload",
            key,
            files={"file": (filename, data, content_type)},
            data={"uploadPath": upload_path, "fileName": filename},
        )
        return self._download_url(result)

    async def upload_url(self, file_url: str, key: str, *, upload_path: str = "photobot") -> str:
        """Ask kie to copy a remote file into its storage; returns the downloadUrl."""
        body = {"fileUrl": file_url, "uploadPath": upload_path}
        return self._download_url(await self._call("POST", f"{self.upload_base_url}/api/file-url-upload", key,
                                                   json=body))  # fmt: skip

    async def upload_base64(self, data_b64: str, key: str, *, filename: str, upload_path: str = "photobot") -> str:
        body = {"base64Data": data_b64, "uploadPath": upload_path, "fileName": filename}
        return self._download_url(await self._call("POST", f"{self.upload_base_url}/api/file-base64-upload", key,
                                                   json=body))  # fmt: skip

    @staticmethod
    def _download_url(data: Any) -> str:
        url = data.get("downloadUrl") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url:
            raise errors.bad_response("upload answered without a downloadUrl")
        return url

    async def _download_own(self, url: str) -> bytes:
        """Read our own (signed) storage URL to re-upload it; bounded by max_image_bytes."""
        try:
            response = await self.client.get(url, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise errors.network_error(exc) from None
        if response.status_code != 200:
            raise ProviderError(errors.NETWORK, f"input URL answered HTTP {response.status_code}", transient=True)
        if len(response.content) > max(self.settings.max_image_bytes, 30 * 1024 * 1024):
            raise errors.invalid_request("image", "input too large to upload")
        return response.content
