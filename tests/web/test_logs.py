"""Structured logs: request ids, context ids, and no secret in any line.

The whole happy path and the error paths run with logging configured exactly as production configures it
(`photobot.logs.logging_dict`, handed to `dictConfig` and to uvicorn as its `log_config`), at DEBUG, with the
handler's stream captured. Then every secret the run handled is searched for in the output: the secret key,
provider keys, the kie HMAC key, client tokens, callback tokens, signed-URL signatures, an organiser's
Apprise bot token, the guest's e-mail address and phone number.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from photobot.db import Database
from photobot.logs import logging_dict
from photobot.settings import Settings
from photobot.signing import CALLBACK_EXPIRY_MARGIN_S
from tests.support.smtp import SMTPServer
from tests.support.stack import StackFactory, fast_sim

KIE_SECRET = "kie-live-key-7f3a9c2e51b84d06"
HMAC_KEY = "hmac-webhook-key-5d8e2f71a9c3"
EMAIL = "jane.guest@example.com"
PHONE = "+628123456789"
BOT_TOKEN = "987654321:AAHsecretBotTokenValue_xyz"
NEW_KEY = "kie-added-by-admin-3b5c7d9e1f"


def _config(settings: Settings, stream: io.StringIO) -> dict[str, Any]:
    config = logging_dict(settings)
    config["handlers"]["default"]["stream"] = stream
    config["handlers"]["default"]["formatter"] = "json"
    return config


@contextmanager
def captured_logging(settings: Settings) -> Iterator[io.StringIO]:
    """Configure logging as production does, into a buffer; put the previous configuration back after."""
    stream = io.StringIO()
    names = ["", *logging_dict(settings)["loggers"]]
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate, lg.disabled)
        for name in names
        for lg in [logging.getLogger(name or None)]
    }
    logging.config.dictConfig(_config(settings, stream))
    try:
        yield stream
    finally:
        for name, (handlers, level, propagate, disabled) in saved.items():
            lg = logging.getLogger(name or None)
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled


async def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_no_secret_in_any_log_line(
    database: Database, ops_app: StackFactory, smtp_server: SMTPServer, make_settings: Any
) -> None:
    overrides = {
        "provider": "simulator", "kie_api_keys": KIE_SECRET, "kie_webhook_hmac_key": HMAC_KEY,
        "smtp_url": smtp_server.url,
    }  # fmt: skip
    probe = make_settings(**overrides)  # the same secrets the app gets
    stream_holder: list[io.StringIO] = []
    with captured_logging(probe) as stream:
        stream_holder.append(stream)
        options = {"log_config": _config(probe, stream), "access_log": True}
        sim = fast_sim(duplicate_callbacks=2, hmac_key=HMAC_KEY)
        async with ops_app(database, sim, serve_options=options, **overrides) as env:
            for name in ("uvicorn.access", "uvicorn.error"):
                logging.getLogger(name).setLevel(logging.DEBUG)
            logging.getLogger().setLevel(logging.DEBUG)
            c, h = env.client, env.admin
            secrets: dict[str, str] = {
                "secret key": env.settings.secret_keys()[0],
                "kie key": KIE_SECRET,
                "hmac key": HMAC_KEY,
                "kiosk token": env.kiosk_token,
                "admin token": env.admin_token,
                "app token": env.app_token,
                "email": EMAIL,
                "phone": PHONE,
                "bot token": BOT_TOKEN,
                "new provider key": NEW_KEY,
            }

            # --- happy path (duplicate callbacks), with the guest's email and phone -------------------------
            done = await env.submit(email=EMAIL, phone=PHONE)
            view = await env.wait_for(done, "completed")
            await _wait(lambda: len(smtp_server.messages) >= 1)
            async with httpx.AsyncClient(timeout=10) as plain:
                assert (await plain.get(view["result_url"])).status_code == 200
                bad_sig = re.sub(r"sig=[^&]+", "sig=AAAAforgedsignatureAAAA", view["result_url"])
                assert (await plain.get(bad_sig)).status_code == 403
            signature = parse_qs(urlsplit(view["result_url"]).query)["sig"][0]
            secrets["media signature"] = signature
            assert (await c.get(f"/p/{(await env.job(done)).public_id}.json")).status_code == 200

            # --- error paths ----------------------------------------------------------------------------------
            assert (
                await c.post(
                    "/v1/jobs", json={"style": "pb_a"}, headers={"Authorization": "Bearer pbt_unknownTokenValue123"}
                )
            ).status_code == 401
            bad_phone = await c.post(
                "/v1/jobs", data={"style": "pb_a", "phone": "+1555", "email": EMAIL}, headers=env.auth,
                files={"image": ("g.jpg", b"not an image", "image/jpeg")},
            )  # fmt: skip
            assert bad_phone.status_code in (400, 415, 422)
            kie_body = json.dumps({"code": 200, "msg": "ok", "data": {"taskId": "t-x", "state": "success"}})
            assert (
                await c.post("/webhooks/kie", params={"token": "forged.token.value"}, content=kie_body)
            ).status_code == 401
            expired = env.token(done, deadline_ts=time.time() - CALLBACK_EXPIRY_MARGIN_S - 10)
            secrets["expired callback token"] = expired
            assert (await c.post("/webhooks/kie", params={"token": expired}, content=kie_body)).status_code == 401
            unsigned = env.token(done)
            secrets["unsigned callback token"] = unsigned
            assert (await c.post("/webhooks/kie", params={"token": unsigned}, content=kie_body)).status_code == 401

            # a failed generation (failure notification to the guest)
            env.sim.config.failure_rate = 1.0
            failed = await env.submit(email=EMAIL)
            await env.wait_for(failed, "failed")

            # --- admin operations that carry secrets ------------------------------------------------------------
            added = await c.post("/v1/admin/keys", json={"provider": "kie", "secret": NEW_KEY}, headers=h)
            assert added.status_code == 201
            made = await c.post("/v1/admin/tokens", json={"scope": "admin", "label": "ops"}, headers=h)
            secrets["created token"] = made.json()["token"]
            event = await c.post(
                "/v1/admin/events", json={"name": "Gala", "alert_urls": [f"tgram://{BOT_TOKEN}/12345"]}, headers=h
            )
            assert event.status_code == 201
            env.sim.config.failure_rate = 0.0
            retried = await c.post(f"/v1/admin/jobs/{failed}/retry", headers=h)
            assert retried.status_code == 201
            await env.wait_for(retried.json()["job"]["id"], "completed")
            stuck = await env.submit(email=EMAIL)
            await c.post(f"/v1/admin/jobs/{stuck}/fail", json={"reason": f"guest {EMAIL} asked"}, headers=h)
            await env.wait_for(stuck, "failed")
            assert (
                await c.post("/v1/admin/keys", json={"provider": "kie", "secret": NEW_KEY}, headers=h)
            ).status_code == 422

            # every callback token the provider was given
            for number, task in enumerate(env.sim.state.tasks.values()):
                url = json.loads(task["param"])["callBackUrl"]
                secrets[f"callback token {number}"] = parse_qs(urlsplit(url).query)["token"][0]
            await asyncio.sleep(0.3)  # let the notifier's last lines land

    output = stream_holder[0].getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(lines) > 50, output[:2000]
    leaks = [name for name, value in secrets.items() if value and value in output]
    assert leaks == [], f"secrets in logs: {leaks}"
    assert "jane.guest" not in output and "8123456789" not in output
    assert signature[:16] not in output

    # the logs are useful: context ids on the lines that have them, redaction visible where it happened
    assert any(line.get("msg") == "job submitted" and line.get("job_id") == done and line.get("task_id")
               and line.get("request_id") is None for line in lines)  # fmt: skip
    assert any(line.get("msg") == "job completed" and line.get("event_id") == env.event_id for line in lines)
    http_lines = [line for line in lines if line.get("msg") == "http request"]
    assert http_lines and all(re.fullmatch(r"[0-9a-f]{32}", line["request_id"]) for line in http_lines)
    assert any(line.get("logger") == "photobot.webhooks.receiver" and line.get("request_id") and line.get("job_id")
               for line in lines)  # fmt: skip
    access = [line for line in lines if line.get("logger") == "uvicorn.access" and "/webhooks/kie" in line["msg"]]
    assert access and all("token=[redacted]" in line["msg"] for line in access)
    assert any("sig=[redacted]" in line["msg"] for line in lines if line.get("logger") == "uvicorn.access")


async def test_request_id_header(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, run_dispatcher=False) as env:
        given = await env.client.get("/healthz", headers={"X-Request-ID": "kiosk-42.abc_1"})
        assert given.headers["x-request-id"] == "kiosk-42.abc_1"
        made = await env.client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
        assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
        problem = await env.client.get("/v1/jobs/nope")
        assert problem.status_code == 401 and re.fullmatch(r"[0-9a-f]{32}", problem.headers["x-request-id"])
        assert made.headers["x-request-id"] != problem.headers["x-request-id"]
