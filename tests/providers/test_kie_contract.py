"""The kie.ai adapter against the simulator over real HTTP: every documented payload variant."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from photobot.providers.base import GenerationRequest
from photobot.providers.errors import CallbackMalformed, CallbackUnknownShape, ProviderError
from photobot.providers.kie import KieProvider, parse_kie_callback, parse_record
from photobot.providers.simulator import Simulator
from photobot.settings import Settings
from tests.support.images import png as png_image
from tests.support.providers import Aux, provider_settings

KEY = "sim-key-contract-0001"


def request(aux: Aux, model: str = "nano-banana-pro", **kw: object) -> GenerationRequest:
    images = () if model == "google/nano-banana" else (f"{aux.url}/input.png",)
    return GenerationRequest(model, "a pop-art portrait", images, callback_url=aux.callback_url(model), **kw)  # type: ignore[arg-type]


async def wait_final(kie: KieProvider, task_id: str, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    import asyncio

    async with asyncio.timeout(timeout):
        while True:
            status = await kie.fetch_status(task_id, {}, KEY)
            if status.final:
                return status
            await asyncio.sleep(0.03)


@pytest.mark.parametrize("model", ["nano-banana-pro", "google/nano-banana", "google/nano-banana-edit", "nano-banana-2"])
async def test_create_task_every_model(
    model: str, simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    kie = KieProvider(http, settings)
    result = await kie.submit(request(aux, model, output_format="jpeg"), KEY)
    assert len(result.task_id) == 32 and result.meta == {}
    param = json.loads(simulator.state.tasks[result.task_id]["param"])
    assert param["model"] == model and param["callBackUrl"].endswith("token=t0k3n")
    (received,) = await aux.wait_for(model)
    event = kie.parse_callback(received.body)
    assert event.task_id == result.task_id and event.outcome == "success" and len(event.result_urls) == 1
    image = await http.get(event.result_urls[0])
    with Image.open(io.BytesIO(image.content)) as img:
        assert img.format in ("PNG", "JPEG")
    status = await kie.fetch_status(result.task_id, {}, KEY)
    assert status.state == "success" and status.result_urls == event.result_urls
    assert json.loads(status.raw["param"])["model"] == model


@pytest.mark.parametrize("style", ["hex", "named"])
@pytest.mark.parametrize("msg_field", ["msg", "message"])
@pytest.mark.parametrize("http_status", ["mirror", "200"])
async def test_envelope_variants(
    style: str, msg_field: str, http_status: str, simulator: Simulator, aux: Aux, settings: Settings,
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    simulator.config.update({"task_id_style": style, "msg_field": msg_field, "http_status": http_status})
    kie = KieProvider(http, settings)
    result = await kie.submit(request(aux), KEY)
    assert result.task_id.startswith("task_nano-banana-pro_") if style == "named" else len(result.task_id) == 32
    simulator.config.next_codes = [455]
    with pytest.raises(ProviderError) as info:
        await kie.submit(request(aux), KEY)
    assert info.value.provider_code == 455 and info.value.code == "provider_maintenance"
    assert "maintenance" in info.value.message  # msg or message, both read


@pytest.mark.parametrize("credit_fields", ["new", "old"])
async def test_failure_callback_and_record(
    credit_fields: str, simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    simulator.config.update({"failure_rate": 1.0, "credit_fields": credit_fields})
    kie = KieProvider(http, settings)
    result = await kie.submit(request(aux), KEY)
    (received,) = await aux.wait_for("nano-banana-pro")
    payload = json.loads(received.body)
    assert payload["code"] == 501 and payload["data"]["resultJson"] is None
    assert ("creditsConsumed" in payload["data"]) == (credit_fields == "new")
    assert ("remainedCredits" in payload["data"]) == (credit_fields == "old")
    event = kie.parse_callback(received.body)
    assert (event.outcome, event.fail_code, event.fail_message) == ("fail", "500", "Internal server error")
    status = await kie.fetch_status(result.task_id, {}, KEY)
    assert status.state == "fail" and status.fail_code == "500" and status.result_urls == ()
    assert status.raw["resultJson"] == ""  # empty string on failure, parsed without error


async def test_unreachable_input_fails_the_task(aux: Aux, settings: Settings, http: httpx.AsyncClient) -> None:
    kie = KieProvider(http, settings)
    req = GenerationRequest(
        "nano-banana-pro", "p", ("http://127.0.0.1:9/nope.png",), callback_url=aux.callback_url("x")
    )
    await kie.submit(req, KEY)
    (received,) = await aux.wait_for("x")
    event = kie.parse_callback(received.body)
    assert event.outcome == "fail" and json.loads(received.body)["code"] == 501


async def test_status_while_running_and_unknown_task(
    simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    simulator.config.callback_delay_s = 5
    kie = KieProvider(http, settings)
    result = await kie.submit(request(aux), KEY)
    status = await kie.fetch_status(result.task_id, {}, KEY)
    assert status.state in ("pending", "running") and not status.final
    with pytest.raises(ProviderError) as info:
        await kie.fetch_status("0" * 32, {}, KEY)
    assert info.value.code == "provider_not_found" and not info.value.transient


async def test_credit_query(simulator: Simulator, settings: Settings, http: httpx.AsyncClient) -> None:
    simulator.config.credits = 42.5
    assert await KieProvider(http, settings).credit(KEY) == 42.5
    assert simulator.stats.credit_calls == 1


async def test_uploads_all_three_endpoints(
    simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    import base64

    kie = KieProvider(http, settings)
    png = png_image((160, 120), (200, 80, 40))
    urls = [
        await kie.upload_stream(png, KEY, filename="a.png", content_type="image/png"),
        await kie.upload_base64(base64.b64encode(png).decode(), KEY, filename="b.png"),
        await kie.upload_url(f"{aux.url}/input.png", KEY),
    ]
    for url in urls:
        assert (await http.get(url)).content == png
    assert simulator.stats.uploads == 3


@pytest.mark.parametrize(
    ("mode", "allow_private", "via"),
    [("auto", True, "signed"), ("auto", False, "uploaded"), ("always", True, "uploaded"), ("never", False, "signed")],
)
async def test_prepare_input_modes(
    mode: str, allow_private: bool, via: str, simulator: Simulator, aux: Aux,
    make_settings: Callable[..., Settings], http: httpx.AsyncClient,
) -> None:  # fmt: skip
    settings = provider_settings(make_settings, simulator, kie_input_upload=mode, allow_private_networks=allow_private)
    kie = KieProvider(http, settings)
    signed = f"{aux.url}/input.png"
    prepared = await kie.prepare_input(signed, KEY)
    assert prepared.via == via
    assert (prepared.url == signed) == (via == "signed")
    assert (await http.get(prepared.url)).content == png_image((160, 120), (200, 80, 40))


def test_public_url_check_without_network() -> None:
    import asyncio

    from photobot.providers.inputs import is_public_url

    async def check() -> list[bool]:
        return [
            await is_public_url("http://127.0.0.1/x"),
            await is_public_url("http://10.1.2.3/x"),
            await is_public_url("http://minio.local/x"),
            await is_public_url("https://8.8.8.8/x"),
            await is_public_url("file:///etc/passwd", allow_private_networks=True),
        ]

    assert asyncio.run(check()) == [False, False, False, True, False]


# --- payload variants, parsed without the network ---------------------------------------------------------


def test_record_parsing_variants() -> None:
    ok = parse_record({"taskId": "t", "state": "success", "resultJson": '{"resultUrls":["https://file.kie.ai/a.png"]}',
                       "failCode": "", "failMsg": "", "param": '{"model":"nano-banana-pro"}'})  # fmt: skip
    assert ok.result_urls == ("https://file.kie.ai/a.png",) and ok.fail_code is None
    for state, mapped in [("waiting", "pending"), ("queuing", "pending"), ("generating", "running")]:
        assert parse_record({"state": state, "resultJson": "", "param": ""}).state == mapped
    fail = parse_record({"state": "fail", "resultJson": "", "failCode": 500, "failMsg": "Internal server error"})
    assert fail.fail_code == "500" and fail.fail_message == "Internal server error"
    with pytest.raises(ProviderError):
        parse_record({"state": "exploded"})
    with pytest.raises(ProviderError):
        parse_record({"state": "success", "resultJson": "{broken"})


def test_callback_parsing_variants() -> None:
    base = {"taskId": "0123456789abcdef0123456789abcdef", "model": "nano-banana-pro", "param": "{}"}
    ok_new = {"code": 200, "msg": "ok", "data": {**base, "state": "success", "failMsg": None, "creditsConsumed": 2,
              "resultJson": json.dumps({"resultUrls": ["https://tempfile.aiquickdraw.com/r.png"]})}}  # fmt: skip
    event = parse_kie_callback(json.dumps(ok_new).encode())
    assert event.outcome == "success" and event.result_urls == ("https://tempfile.aiquickdraw.com/r.png",)
    ok_old = {"code": 200, "message": "ok", "data": {**base, "taskId": "task_nano-banana-pro_1765178625768",
              "state": "success", "consumeCredits": 2, "remainedCredits": 98,
              "resultJson": {"resultUrls": ["https://file.kie.ai/r.png"]}}}  # fmt: skip
    assert parse_kie_callback(json.dumps(ok_old).encode()).task_id == "task_nano-banana-pro_1765178625768"
    failed = {"code": 501, "msg": "fail", "data": {"task_id": "abc", "state": "fail", "resultJson": None,
              "failCode": "500", "failMsg": "Internal server error"}}  # fmt: skip
    event = parse_kie_callback(json.dumps(failed).encode())
    assert (event.task_id, event.outcome, event.fail_code) == ("abc", "fail", "500")
    no_state = {"code": 501, "msg": "Generation failed", "data": {"taskId": "abc"}}
    assert parse_kie_callback(json.dumps(no_state).encode()).fail_code == "501"
    success_without_urls = {"code": 200, "data": {"taskId": "abc", "state": "success", "resultJson": ""}}
    assert parse_kie_callback(json.dumps(success_without_urls).encode()).needs_fetch


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"[1, 2]", b""])
def test_malformed_callbacks(body: bytes) -> None:
    with pytest.raises(CallbackMalformed):
        parse_kie_callback(body)


@pytest.mark.parametrize(
    "payload", [{"code": 200}, {"code": 200, "data": {"state": "success"}}, {"data": {"taskId": "a", "state": "odd"}}]
)
def test_unknown_callback_shapes(payload: dict[str, object]) -> None:
    with pytest.raises(CallbackUnknownShape) as info:
        parse_kie_callback(json.dumps(payload).encode())
    assert info.value.reason == "unknown_shape"
