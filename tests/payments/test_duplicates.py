"""Ten concurrent notifications for one approved payment, across two separate app processes, grant once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from photobot.db import Database
from photobot.settings import Settings
from tests.support.payments import ACCESS_TOKEN, WEBHOOK_SECRET, Shop, open_shop, signed_headers
from tests.support.processes import photobot_env, photobot_server
from tests.support.servers import free_port


@asynccontextmanager
async def app_process(db_url: str, sim_url: str, var_dir: Path) -> AsyncIterator[str]:
    """`photobot serve --no-worker` in its own OS process, configured through the environment only."""
    port = free_port()
    env = photobot_env(
        PHOTOBOT_DATABASE_URL=db_url, PHOTOBOT_VAR_DIR=str(var_dir), PHOTOBOT_SECRET_KEY="test-secret-key-" + "y" * 32,
        PHOTOBOT_MERCADOPAGO_ACCESS_TOKEN=ACCESS_TOKEN, PHOTOBOT_MERCADOPAGO_WEBHOOK_SECRET=WEBHOOK_SECRET,
        PHOTOBOT_MERCADOPAGO_BASE_URL=sim_url, PHOTOBOT_LOG_LEVEL="WARNING",
    )  # fmt: skip
    async with photobot_server("serve", "--no-worker", "--port", str(port), env=env, cwd=var_dir, port=port) as app:
        yield app.base_url


async def test_ten_concurrent_notifications_in_two_processes_grant_once(
    database: Database, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    shop: Shop
    async for shop in open_shop(database, make_settings):
        created = await shop.buy()
        payment = await shop.sim_pay(created["id"], notify=False)
        pid = str(payment["id"])
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        async with (
            app_process(database.url, shop.sim.url, tmp_path / "a") as first,
            app_process(database.url, shop.sim.url, tmp_path / "b") as second,
            httpx.AsyncClient(timeout=30) as client,
        ):
            query = {"data.id": pid, "type": "payment"}
            body = {"action": "payment.created", "type": "payment", "data": {"id": pid}}
            answers = await asyncio.gather(*(
                client.post(f"{(first, second)[i % 2]}/webhooks/mercadopago", params=query, json=body,
                            headers=signed_headers(pid))
                for i in range(10)
            ))  # fmt: skip
            assert [a.status_code for a in answers] == [200] * 10
            await shop.wait_status(created["id"], "approved")
            await asyncio.sleep(1.0)  # let every process finish its background look-ups
        assert await shop.balances() == (0, 10)
        rows = await shop.ledger_rows("purchase")
        assert [(r.delta, r.payment_id) for r in rows] == [(10, pid)]


async def test_the_simulator_itself_can_flood_one_receiver(shop: Shop) -> None:
    created = await shop.buy()
    payment = await shop.sim_pay(created["id"], notify=False)
    async with httpx.AsyncClient(timeout=30) as c:
        r = await c.post(f"{shop.sim.url}/_sim/payments/{payment['id']}/notify", json={"count": 10})
    assert r.json()["answers"] == [200] * 10
    await shop.wait_status(created["id"], "approved")
    await shop.settle_notifications(10)
    assert await shop.balances() == (0, 10)
    assert len(await shop.ledger_rows("purchase")) == 1
