"""Amount mismatch (recorded, alerted, not granted) and money going back after approval (unspent credits
reversed, never below zero, the shortfall recorded and alerted), with the operator alert delivered through
Apprise to a real HTTP receiver (`json://`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.db import Database
from photobot.db.models import Job, utcnow
from photobot.jobs import credits
from photobot.payments.gateway import Payments
from photobot.payments.reconcile import Reconciler
from photobot.runtime import Runtime
from photobot.settings import Settings
from tests.support.payments import Shop, open_shop
from tests.support.servers import serve


@pytest.fixture
async def alert_inbox() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def collect(request: Request) -> Response:
        received.append(await request.json())
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/alerts", collect, methods=["POST"])])
    async with serve(app) as url:
        yield url.replace("http://", "json://") + "/alerts", received


@pytest.fixture
async def alert_shop(
    database: Database, make_settings: Callable[..., Settings], alert_inbox: tuple[str, list[dict[str, Any]]]
) -> AsyncIterator[Shop]:
    async for env in open_shop(database, make_settings, operator_alert_urls=alert_inbox[0]):
        yield env


async def send_alerts(shop: Shop) -> None:
    async with Runtime.open(shop.settings) as runtime, Payments.open(runtime, start_simulator=False) as payments:
        await Reconciler(runtime, payments).send_alerts()


async def spend(shop: Shop, user_id: int, cost: int) -> None:
    """A job that reserved `cost` of the user's credits (still running: a reservation is spent money)."""
    async with shop.db.session() as session:
        job = Job(user_id=user_id, style_id="pb_a", cost=cost, provider="kie", model="nano-banana-pro", prompt="p",
                  input_key="inputs/x.jpg", deadline_at=utcnow() + timedelta(minutes=5))  # fmt: skip
        session.add(job)
        await session.flush()
        await credits.reserve(session, job)


async def test_amount_mismatch_is_recorded_alerted_and_not_granted(
    alert_shop: Shop, alert_inbox: tuple[str, list[dict[str, Any]]]
) -> None:
    shop = alert_shop
    created = await shop.buy()
    payment = await shop.sim_pay(created["id"], amount="1.00")
    view = await shop.wait_status(created["id"], "rejected")
    assert view["error_code"] == "amount_mismatch" and view["payment_id"] == str(payment["id"])
    assert await shop.balances() == (0, 0)
    assert await shop.ledger_rows("purchase") == []
    row = await shop.row(created["id"])
    assert row.alert_pending and "100 cents BRL" in (row.error_message or "")

    await send_alerts(shop)
    assert len(alert_inbox[1]) == 1
    assert "amount_mismatch" in alert_inbox[1][0]["title"] and created["id"] in alert_inbox[1][0]["message"]
    assert not (await shop.row(created["id"])).alert_pending
    await send_alerts(shop)
    assert len(alert_inbox[1]) == 1  # sent once


async def test_wrong_currency_is_a_mismatch_too(shop: Shop) -> None:
    created = await shop.buy()
    # the simulator charges in the preference's currency; a payment Mercado Pago reports in another currency
    payment = await shop.sim_pay(created["id"], notify=False)
    shop.sim.state.payments[str(payment["id"])]["currency_id"] = "ARS"
    await shop.sim_update(payment["id"], "approved")
    view = await shop.wait_status(created["id"], "rejected")
    assert view["error_code"] == "amount_mismatch"
    assert await shop.balances() == (0, 0)


async def test_refund_after_partial_spend_reverses_what_is_left(
    alert_shop: Shop, alert_inbox: tuple[str, list[dict[str, Any]]]
) -> None:
    shop = alert_shop
    created = await shop.buy()
    await shop.click(created["checkout_url"], "approved")
    view = await shop.wait_status(created["id"], "approved")
    await spend(shop, shop.user_id, 7)
    assert await shop.balances() == (0, 3)

    await shop.sim_update(view["payment_id"], "refunded")
    view = await shop.wait_status(created["id"], "refunded")
    assert (view["reversed_credits"], view["shortfall"], view["error_code"]) == (3, 7, "reversal_shortfall")
    assert await shop.balances() == (0, 0)  # never negative
    reversals = await shop.ledger_rows("purchase_reversal")
    assert [(r.delta, r.payment_id) for r in reversals] == [(-3, view["payment_id"])]

    await shop.sim_update(view["payment_id"], "refunded")  # the notification again: nothing more
    await shop.settle_notifications(3)
    assert len(await shop.ledger_rows("purchase_reversal")) == 1

    await send_alerts(shop)
    assert len(alert_inbox[1]) == 1 and "reversal_shortfall" in alert_inbox[1][0]["title"]


async def test_chargeback_without_spending_takes_everything_back(shop: Shop) -> None:
    created = await shop.buy(pack_id=shop.pack_id, event_id=shop.event_id, token=shop.kiosk_token)
    await shop.click(created["checkout_url"], "approved")
    view = await shop.wait_status(created["id"], "approved")
    assert await shop.balances() == (10, 0)
    await shop.sim_update(view["payment_id"], "charged_back")
    view = await shop.wait_status(created["id"], "charged_back")
    assert (view["reversed_credits"], view["shortfall"], view["error_code"]) == (10, 0, None)
    assert await shop.balances() == (0, 0)
    assert not (await shop.row(created["id"])).alert_pending


async def test_a_second_approved_payment_is_recorded_not_granted(shop: Shop) -> None:
    created = await shop.buy()
    await shop.sim_pay(created["id"])
    await shop.wait_status(created["id"], "approved")
    second = await shop.sim_pay(created["id"])
    await shop.settle_notifications(2)
    row = await shop.row(created["id"])
    assert row.status == "approved" and row.error_code == "duplicate_payment"
    assert str(second["id"]) in (row.error_message or "") and row.alert_pending
    assert await shop.balances() == (0, 10)
