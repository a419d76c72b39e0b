"""The checkout end to end through the simulator: approve grants once, reject grants nothing, pending then approved."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from photobot.db import Database
from photobot.settings import Settings
from tests.support.payments import Shop, open_shop


async def test_approve_grants_the_pack_once(shop: Shop) -> None:
    created = await shop.buy()
    assert set(created) == {"id", "status", "checkout_url", "credits", "price", "currency", "created_at"}
    assert created["status"] == "pending" and created["credits"] == 10
    assert created["price"] == "9.90" and created["currency"] == "BRL"
    assert created["checkout_url"].startswith(shop.sim.url + "/checkout/")

    landed = await shop.click(created["checkout_url"], "approved")
    assert landed.status_code == 200
    assert str(landed.url).startswith(f"{shop.base_url}/purchases/{created['id']}/result")

    view = await shop.wait_status(created["id"], "approved")
    assert view["payment_id"]
    assert await shop.balances() == (0, 10)
    # the same notification again, three times: nothing more
    await shop.settle_notifications(1)
    async with httpx.AsyncClient(timeout=30) as c:
        r = await c.post(f"{shop.sim.url}/_sim/payments/{view['payment_id']}/notify", json={"count": 3})
        assert r.json()["answers"] == [200, 200, 200]
    await shop.settle_notifications(4)
    assert await shop.balances() == (0, 10)
    rows = await shop.ledger_rows("purchase")
    assert [(r.delta, r.payment_id, r.purchase_id) for r in rows] == [(10, view["payment_id"], created["id"])]
    page = await shop.client.get(f"/purchases/{created['id']}/result")
    assert "data-status='approved'" in page.text
    exposed = (await shop.client.get("/metrics")).text
    assert 'photobot_payments_applied_total{outcome="granted"}' in exposed
    assert 'photobot_payments_applied_total{outcome="duplicate"}' in exposed


async def test_reject_grants_nothing(shop: Shop) -> None:
    created = await shop.buy()
    await shop.click(created["checkout_url"], "rejected")
    view = await shop.wait_status(created["id"], "rejected")
    assert view["payment_id"]
    assert await shop.balances() == (0, 0)
    assert await shop.ledger_rows("purchase") == []


async def test_pending_then_approved(shop: Shop) -> None:
    created = await shop.buy()
    await shop.click(created["checkout_url"], "pending")
    await shop.settle_notifications(1)
    view = await shop.purchase(created["id"])
    assert view["status"] == "pending" and view["payment_id"]
    assert await shop.balances() == (0, 0)

    await shop.sim_update(view["payment_id"], "approved")
    await shop.wait_status(created["id"], "approved")
    assert await shop.balances() == (0, 10)
    assert len(await shop.ledger_rows("purchase")) == 1


async def test_without_an_access_token_the_builtin_simulator_runs_the_checkout(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    """What `make run` shows: no Mercado Pago settings at all, the app starts its own simulator, signs
    notifications with a secret derived from PHOTOBOT_SECRET_KEY and verifies them."""
    unset = {"mercadopago_access_token": None, "mercadopago_webhook_secret": None,
             "mercadopago_base_url": "https://api.mercadopago.com"}  # fmt: skip
    async for shop in open_shop(database, make_settings, **unset):
        created = await shop.buy()
        assert not created["checkout_url"].startswith(shop.sim.url)  # the app's own simulator, not the fixture's
        landed = await shop.click(created["checkout_url"], "approved")
        assert landed.status_code == 200 and str(landed.url).startswith(shop.base_url)
        await shop.wait_status(created["id"], "approved")
        assert await shop.balances() == (0, 10)
