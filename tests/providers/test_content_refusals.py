"""Provider content refusals are recognised as such (`content_blocked`), from kie.ai task failures and from fal.ai's
`content_policy_violation` errors, against the simulator over real HTTP — and ordinary failures are not."""

from __future__ import annotations

import json

import httpx
import pytest

from photobot.jobs.outcomes import provider_fail_code
from photobot.providers.base import GenerationRequest
from photobot.providers.errors import CONTENT_BLOCKED, classify_fal, classify_kie, is_content_refusal
from photobot.providers.fal import FalProvider, parse_fal_webhook
from photobot.providers.kie import parse_kie_callback
from photobot.providers.simulator import Simulator
from photobot.providers.simulator.kie_api import CONTENT_REFUSAL_MESSAGE
from photobot.settings import Settings
from tests.support.providers import Aux

KEY = "fal-key-id:fal-key-secret"


def _kie_fail(code: str, message: str) -> bytes:
    data = {"taskId": "t-1", "state": "fail", "failCode": code, "failMsg": message, "resultJson": None}
    return json.dumps({"code": 501, "msg": "done", "data": data}).encode()


@pytest.mark.parametrize(
    ("code", "message", "blocked"),
    [
        ("422", CONTENT_REFUSAL_MESSAGE, True),
        ("422", "The image was flagged as sensitive content", True),
        ("400", "NSFW content detected in the input image", True),
        ("422", "image_input: too many images", False),  # a plain validation failure stays what it is
        ("500", "Internal server error", False),
        ("", None, False),
    ],
)
def test_kie_task_failures(code: str, message: str | None, blocked: bool) -> None:
    event = parse_kie_callback(_kie_fail(code, message or ""))
    ours = provider_fail_code(event.fail_code, event.fail_message)
    assert (ours == CONTENT_BLOCKED) is blocked, ours


def test_synchronous_refusals_are_classified() -> None:
    refused = classify_kie(422, "Your prompt contains prohibited content")
    assert refused.code == CONTENT_BLOCKED and not refused.transient and refused.key_effect is None
    assert classify_kie(422, "aspect_ratio is invalid").code == "provider_validation"
    fal = classify_fal(422, "The content was flagged by a content checker. [content_policy_violation]")
    assert fal.code == CONTENT_BLOCKED and not fal.retryable
    assert classify_fal(422, "prompt: field required").code == "provider_validation"
    assert is_content_refusal("content_policy_violation", None)


def test_fal_webhook_with_a_content_policy_violation() -> None:
    body = {
        "request_id": "r-1", "status": "ERROR", "error": "Invalid status code: 422",
        "payload": {"detail": [{"loc": ["body", "prompt"], "msg": "The content was flagged by a content checker.",
                                "type": "content_policy_violation", "categories": ["sexual"]}]},
    }  # fmt: skip
    event = parse_fal_webhook(json.dumps(body).encode())
    assert event.fail_code == "content_policy_violation"
    assert provider_fail_code(event.fail_code, event.fail_message) == CONTENT_BLOCKED
    body["payload"] = {"detail": [{"msg": "Internal error", "type": "internal_error"}]}
    other = parse_fal_webhook(json.dumps(body).encode())
    assert provider_fail_code(other.fail_code, other.fail_message) == "provider_failed_ERROR"


async def test_fal_refusal_from_the_simulator_by_webhook_and_by_status(
    simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    simulator.config.fal_content_block_rate = 1.0
    fal = FalProvider(http, settings)
    request = GenerationRequest("fal-ai/nano-banana-pro/edit", "p", (f"{aux.url}/input.png",),
                                callback_url=aux.callback_url("fal"))  # fmt: skip
    submitted = await fal.submit(request, KEY)
    (hook,) = await aux.wait_for("fal")
    event = fal.parse_callback(hook.body)
    assert event.outcome == "fail" and provider_fail_code(event.fail_code, event.fail_message) == CONTENT_BLOCKED
    status = await fal.fetch_status(submitted.task_id, submitted.meta, KEY)
    assert status.state == "fail" and provider_fail_code(status.fail_code, status.fail_message) == CONTENT_BLOCKED
