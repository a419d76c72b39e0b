"""kie.ai callback HMAC: valid, bad, missing headers, stale; and callbacks signed by the simulator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from photobot.providers.base import GenerationRequest
from photobot.providers.errors import CallbackMalformed, SignatureInvalid
from photobot.providers.kie import KieProvider
from photobot.providers.signatures import kie_signature, verify_kie_hmac
from photobot.providers.simulator import Simulator
from photobot.settings import Settings
from tests.support.providers import Aux, provider_settings

HMAC_KEY = "whk-test-0123456789"
TASK = "0123456789abcdef0123456789abcdef"


def body(where: str = "data.taskId") -> bytes:
    data: dict[str, object] = {"state": "success"}
    payload: dict[str, object] = {"code": 200, "msg": "ok", "data": data}
    if where == "taskId":
        payload["taskId"] = TASK
    elif where == "data.taskId":
        data["taskId"] = TASK
    else:
        data["task_id"] = TASK
    return json.dumps(payload).encode()


def headers(ts: int | None = None, key: str = HMAC_KEY, task: str = TASK) -> dict[str, str]:
    stamp = int(time.time()) if ts is None else ts
    return {"X-Webhook-Timestamp": str(stamp), "X-Webhook-Signature": kie_signature(key, task, stamp)}


@pytest.mark.parametrize("where", ["taskId", "data.taskId", "data.task_id"])
def test_valid_signature_for_every_task_id_location(where: str) -> None:
    verify_kie_hmac(HMAC_KEY, body(where), headers())
    verify_kie_hmac(HMAC_KEY, body(where), {k.lower(): v for k, v in headers().items()})


def test_known_vector() -> None:
    # base64(HMAC-SHA256("key", "task.1700000000")), computed independently with openssl
    assert kie_signature("key", "task", 1700000000) == "gvI6gL9GybgZDXL/Mpk0Ccf/YM23cSLbj/iqVul3HJI="


@pytest.mark.parametrize(
    "bad",
    [
        headers(key="another-key"),
        headers(task="ffffffffffffffffffffffffffffffff"),
        {**headers(), "X-Webhook-Signature": "not base64 at all"},
        {**headers(), "X-Webhook-Timestamp": str(int(time.time()) + 1)},  # signature for another timestamp
    ],
)
def test_bad_signatures(bad: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid):
        verify_kie_hmac(HMAC_KEY, body(), bad)


@pytest.mark.parametrize("missing", ["X-Webhook-Timestamp", "X-Webhook-Signature"])
def test_missing_headers(missing: str) -> None:
    partial = headers()
    del partial[missing]
    with pytest.raises(SignatureInvalid):
        verify_kie_hmac(HMAC_KEY, body(), partial)


@pytest.mark.parametrize("age", [301, -301, 100000])
def test_stale_or_future_timestamps(age: int) -> None:
    with pytest.raises(SignatureInvalid) as info:
        verify_kie_hmac(HMAC_KEY, body(), headers(ts=int(time.time()) - age))
    assert "window" in str(info.value)


def test_edges_of_the_window_are_accepted() -> None:
    now = 1_800_000_000
    verify_kie_hmac(HMAC_KEY, body(), headers(ts=now - 300), now=now)
    verify_kie_hmac(HMAC_KEY, body(), headers(ts=now + 300), now=now)


def test_no_task_id_or_not_json() -> None:
    with pytest.raises(SignatureInvalid):
        verify_kie_hmac(HMAC_KEY, b'{"code": 200, "data": {}}', headers())
    with pytest.raises(CallbackMalformed):
        verify_kie_hmac(HMAC_KEY, b"<html>", headers())


async def test_simulator_callbacks_verify_end_to_end(
    simulator: Simulator, aux: Aux, make_settings: Callable[..., Settings], http: httpx.AsyncClient
) -> None:
    simulator.config.hmac_key = HMAC_KEY
    kie = KieProvider(http, provider_settings(make_settings, simulator, kie_webhook_hmac_key=HMAC_KEY))
    unsigned = KieProvider(http, provider_settings(make_settings, simulator))
    wrong = KieProvider(http, provider_settings(make_settings, simulator, kie_webhook_hmac_key="nope"))
    req = GenerationRequest("nano-banana-pro", "p", (f"{aux.url}/input.png",), callback_url=aux.callback_url("h"))
    await kie.submit(req, "k-hmac-1")
    (received,) = await aux.wait_for("h")
    await kie.verify_callback(received.body, received.headers)
    await unsigned.verify_callback(received.body, {})  # no key configured: nothing to check
    with pytest.raises(SignatureInvalid):
        await wrong.verify_callback(received.body, received.headers)
    with pytest.raises(SignatureInvalid):
        await kie.verify_callback(received.body, {})
