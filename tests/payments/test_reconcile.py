"""Lost notifications cost latency, not credits: the worker's reconciler finds the payment; backoff; expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from photobot.db import Database
from photobot.db.models import utcnow
from photobot.payments.gateway import Payments
from photobot.payments.reconcile import Reconciler, next_delay
from photobot.runtime import Runtime
from photobot.settings import Settings
from tests.support.payments import Shop, open_shop


async def _reconciler(shop: Shop) -> AsyncIterator[Reconciler]:
    async with Runtime.open(shop.settings) as runtime, Payments.open(runtime, start_simulator=False) as payments:
        yield Reconciler(runtime, payments)


async def test_lost_notification_the_worker_grants(database: Database, make_settings: Callable[..., Settings]) -> None:
    """With the worker running (as `photobot serve` does), a payment nobody notified us about is found."""
    async for shop in open_shop(database, make_settings, run_dispatcher=True, mercadopago_reconcile_after_s=1,
                                poll_interval_s=0.2):  # fmt: skip
        created = await shop.buy()
        await shop.sim_pay(created["id"], notify=False)
        assert await shop.notifications() == []
        view = await shop.wait_status(created["id"], "approved", timeout=20)
        assert view["payment_id"]
        assert await shop.balances() == (0, 10)
        assert len(await shop.ledger_rows("purchase")) == 1


async def test_nothing_found_backs_off_then_expires(shop: Shop) -> None:
    created = await shop.buy()
    row = await shop.row(created["id"])
    assert row.next_check_at is not None
    async for reconciler in _reconciler(shop):
        assert await reconciler.run_once(now=utcnow()) == 0  # not due yet (reconcile after 3600 s)
        due = row.next_check_at + timedelta(seconds=1)
        assert await reconciler.run_once(now=due) == 1
        after = await shop.row(created["id"])
        assert after.check_attempts == 1 and after.status == "pending"
        assert after.next_check_at is not None
        assert after.next_check_at - due >= timedelta(seconds=next_delay(3600, 2) - 1)
        assert await reconciler.run_once(now=due + timedelta(seconds=1)) == 0  # backing off

        # a payment approved while we wait is found by the next due look-up
        await shop.sim_pay(created["id"], notify=False)
        assert await reconciler.run_once(now=after.next_check_at + timedelta(seconds=1)) == 1
        assert (await shop.row(created["id"])).status == "approved"

        other = await shop.buy()
        await reconciler.run_once(now=utcnow() + timedelta(seconds=shop.settings.purchase_expiry_s + 1))
        expired = await shop.purchase(other["id"])
        assert (expired["status"], expired["error_code"]) == ("cancelled", "expired")
    assert await shop.balances() == (0, 10)


async def test_a_late_approval_after_expiry_is_still_granted(shop: Shop) -> None:
    created = await shop.buy()
    async for reconciler in _reconciler(shop):
        await reconciler.run_once(now=utcnow() + timedelta(seconds=shop.settings.purchase_expiry_s + 1))
    assert (await shop.purchase(created["id"]))["status"] == "cancelled"
    await shop.sim_pay(created["id"])  # the buyer paid anyway: the money is in, so are the credits
    await shop.wait_status(created["id"], "approved")
    assert await shop.balances() == (0, 10)


def test_backoff_doubles_and_is_capped() -> None:
    assert [next_delay(300, n) for n in (1, 2, 3, 4, 5)] == [300, 600, 1200, 2400, 3600]


async def test_a_second_try_after_a_declined_card_is_found_too(shop: Shop) -> None:
    created = await shop.buy()
    await shop.click(created["checkout_url"], "rejected")
    await shop.wait_status(created["id"], "rejected")
    await shop.sim_pay(created["id"], notify=False)  # another card, approved; its notification is lost
    row = await shop.row(created["id"])
    assert row.next_check_at is not None
    async for reconciler in _reconciler(shop):
        assert await reconciler.run_once(now=row.next_check_at + timedelta(seconds=1)) == 1
    assert (await shop.purchase(created["id"]))["status"] == "approved"
    assert await shop.balances() == (0, 10)
