"""The simulator itself: admin endpoints, fault knobs, counters, real images, the CLI entry point."""

from __future__ import annotations

import asyncio
import io
import json

import httpx
import pytest
from click.testing import CliRunner
from PIL import Image

from photobot.cli.simulator import command
from photobot.providers.simulator import SimConfig, Simulator
from photobot.providers.simulator.imaging import stylise
from tests.support.images import png as png_image
from tests.support.providers import Aux

KEY = "sim-self-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def create_body(aux: Aux, name: str = "s", **inputs: object) -> dict[str, object]:
    return {"model": "nano-banana-pro", "callBackUrl": aux.callback_url(name),
            "input": {"prompt": "neon", "image_input": [f"{aux.url}/input.png"], **inputs}}  # fmt: skip


async def create(
    http: httpx.AsyncClient, sim: Simulator, aux: Aux, name: str = "s", **inputs: object
) -> httpx.Response:
    return await http.post(f"{sim.url}/api/v1/jobs/createTask", json=create_body(aux, name, **inputs), headers=AUTH)


async def test_admin_config_and_stats_over_http(simulator: Simulator, aux: Aux, http: httpx.AsyncClient) -> None:
    response = await http.post(f"{simulator.url}/_sim/config", json={"maintenance": True, "hmac_key": "x"})
    assert response.status_code == 200 and response.json()["maintenance"] is True
    assert response.json()["hmac_key"] == "set"  # the admin API never echoes the key
    assert (await create(http, simulator, aux)).json()["code"] == 455
    bad = await http.post(f"{simulator.url}/_sim/config", json={"maintenence": True})
    assert bad.status_code == 400 and "maintenence" in bad.json()["error"]
    assert (await http.post(f"{simulator.url}/_sim/config", json={"failure_rate": "high"})).status_code == 400
    stats = (await http.get(f"{simulator.url}/_sim/stats")).json()
    assert stats["create_calls"] == {KEY: 1}
    await http.post(f"{simulator.url}/_sim/reset")
    assert (await http.get(f"{simulator.url}/_sim/config")).json()["maintenance"] is False
    assert (await http.get(f"{simulator.url}/_sim/stats")).json()["create_calls_total"] == 0


async def test_auth_checks(simulator: Simulator, aux: Aux, http: httpx.AsyncClient) -> None:
    url = f"{simulator.url}/api/v1/jobs/createTask"
    assert (await http.post(url, json=create_body(aux))).json()["code"] == 401
    assert (await http.post(url, json=create_body(aux), headers={"Authorization": "Basic abc"})).json()["code"] == 401
    simulator.config.valid_keys = ["only-this-one"]
    assert (await http.post(url, json=create_body(aux), headers=AUTH)).status_code == 401
    ok = await http.post(url, json=create_body(aux), headers={"Authorization": "Bearer only-this-one"})
    assert ok.json()["code"] == 200


async def test_rate_limit_answers_429_per_key(simulator: Simulator, aux: Aux, http: httpx.AsyncClient) -> None:
    simulator.config.update({"rate_limit": 3, "rate_window_s": 5.0, "callback_delay_s": 30.0})
    codes = [(await create(http, simulator, aux)).json()["code"] for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    other = await http.post(f"{simulator.url}/api/v1/jobs/createTask", json=create_body(aux),
                            headers={"Authorization": "Bearer another"})  # fmt: skip
    assert other.json()["code"] == 200
    assert simulator.stats.rate_limited == 2


async def test_duplicate_and_lost_callbacks(simulator: Simulator, aux: Aux, http: httpx.AsyncClient) -> None:
    simulator.config.duplicate_callbacks = 3
    task_id = (await create(http, simulator, aux, "dup")).json()["data"]["taskId"]
    received = await aux.wait_for("dup", 3)
    assert {json.loads(r.body)["data"]["taskId"] for r in received} == {task_id}
    simulator.config.update({"duplicate_callbacks": 1, "drop_rate": 1.0})
    lost = (await create(http, simulator, aux, "lost")).json()["data"]["taskId"]
    async with asyncio.timeout(5):
        while simulator.state.tasks[lost]["state"] != "success":
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert aux.callbacks["lost"] == [] and simulator.stats.callbacks_dropped == 1
    record = await http.get(f"{simulator.url}/api/v1/jobs/recordInfo", params={"taskId": lost}, headers=AUTH)
    assert record.json()["data"]["state"] == "success"  # lost callback, the task is still there


async def test_out_of_order_callbacks(simulator: Simulator, aux: Aux, http: httpx.AsyncClient) -> None:
    simulator.config.update({"callback_delay_s": 0.0, "callback_jitter_s": 0.4})
    sent = [(await create(http, simulator, aux, "ooo")).json()["data"]["taskId"] for _ in range(8)]
    received = await aux.wait_for("ooo", 8)
    order = [json.loads(r.body)["data"]["taskId"] for r in received]
    assert sorted(order) == sorted(sent)  # all arrive; with jitter, order is almost never the sending order


async def test_result_padding_and_host_override(simulator: Simulator, aux: Aux, http: httpx.AsyncClient) -> None:
    simulator.config.result_pad_bytes = 2 * 1024 * 1024
    await create(http, simulator, aux, "pad")
    (received,) = await aux.wait_for("pad")
    url = json.loads(json.loads(received.body)["data"]["resultJson"])["resultUrls"][0]
    data = (await http.get(url)).content
    assert 2 * 1024 * 1024 - 64 <= len(data) <= 2 * 1024 * 1024 + 64
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.size == (128, 96)  # no aspect_ratio sent: the input's 4:3
    simulator.config.result_host = "https://tempfile.aiquickdraw.com"
    await create(http, simulator, aux, "host")
    (received,) = await aux.wait_for("host")
    assert "https://tempfile.aiquickdraw.com/files/results/" in received.body.decode()


def test_stylised_image_is_real_and_different() -> None:
    source = png_image((300, 200), (200, 80, 40))
    png, ctype = stylise(source, "pop art", aspect_ratio="16:9", resolution="2K", long_side=256)
    assert ctype == "image/png"
    with Image.open(io.BytesIO(png)) as img:
        assert img.size == (384, 216) and img.getpixel((100, 100)) != (200, 80, 40)
    jpg, ctype = stylise(source, "x", output_format="jpg", pad_to=300_000)
    assert ctype == "image/jpeg" and abs(len(jpg) - 300_000) < 8
    with Image.open(io.BytesIO(jpg)) as img:
        img.load()


async def test_in_process_runner_on_a_free_port(http: httpx.AsyncClient) -> None:
    async with Simulator(SimConfig(credits=7)) as sim:
        answer = await http.get(f"{sim.url}/api/v1/chat/credit", headers=AUTH)
        assert answer.json() == {"code": 200, "msg": "success", "data": 7.0}
        url = sim.url
    with pytest.raises(httpx.ConnectError):
        await http.get(f"{url}/_sim/stats")


def test_cli_command() -> None:
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0 and "--callback-delay" in result.output and "--hmac-key" in result.output
    assert command.name == "simulator"
