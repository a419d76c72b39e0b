"""Notifications and purchases are rate-limited like the other receivers (429, nothing changes), and neither the
access token nor the webhook secret ever reaches a log line or a response."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from photobot.db import Database
from photobot.settings import Settings
from tests.support.payments import ACCESS_TOKEN, WEBHOOK_SECRET, open_shop, signed_headers


async def test_notifications_and_purchases_are_rate_limited(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    limits = {"mercadopago_webhook_rate_limit": "3/minute", "purchase_rate_limit": "2/minute"}
    async for shop in open_shop(database, make_settings, **limits):
        first = await shop.buy()
        await shop.buy()
        r = await shop.client.post("/v1/purchases", json={"pack_id": shop.pack_id, "user_id": shop.user_id},
                                   headers=shop.auth())  # fmt: skip
        assert (r.status_code, r.json()["code"]) == (429, "rate_limited") and r.headers["Retry-After"]

        pid = str((await shop.sim_pay(first["id"], notify=False))["id"])
        params = {"data.id": "1", "type": "payment"}
        for _ in range(3):  # forged ones count too: a flood never reaches the signature check
            await shop.client.post("/webhooks/mercadopago", params=params, headers=signed_headers("2"))
        r = await shop.client.post("/webhooks/mercadopago", params={"data.id": pid, "type": "payment"},
                                   headers=signed_headers(pid))  # fmt: skip
        assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
        assert (await shop.row(first["id"])).status == "pending"
        assert await shop.balances() == (0, 0)


async def test_secrets_never_reach_logs_or_answers(
    database: Database, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[str] = []
    async for shop in open_shop(database, make_settings):
        created = await shop.buy()
        await shop.click(created["checkout_url"], "approved")
        await shop.wait_status(created["id"], "approved")
        forged = await shop.client.post("/webhooks/mercadopago", params={"data.id": "5", "type": "payment"},
                                        headers=signed_headers("5", secret="nope"))  # fmt: skip
        answers += [forged.text, (await shop.client.get(f"/v1/purchases/{created['id']}", headers=shop.auth())).text]
        admin = await shop.client.get("/v1/admin/purchases", headers=shop.auth(shop.admin_token))
        answers.append(admin.text)
    async for shop in open_shop(database, make_settings, mercadopago_access_token="TEST-refused-token-42"):
        refused = await shop.client.post("/v1/purchases", json={"pack_id": shop.pack_id, "user_id": shop.user_id},
                                         headers=shop.auth())  # fmt: skip
        answers.append(refused.text)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (ACCESS_TOKEN, WEBHOOK_SECRET, "TEST-refused-token-42"):
        assert secret not in logged
        assert all(secret not in a for a in answers)
    assert "payment applied: granted" in logged  # the flow did log
