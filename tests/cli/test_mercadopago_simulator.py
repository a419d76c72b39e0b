"""`photobot mercadopago-simulator` in its own process, and an app without an access token pointed at it: the
third row of `payments/gateway.py` (its test token, the secret derived from the shared PHOTOBOT_SECRET_KEY)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from photobot.app import create_app
from photobot.db import Database
from photobot.payments import packs
from photobot.services import access, accounts
from photobot.settings import Settings
from tests.support.processes import photobot_env, photobot_server
from tests.support.servers import free_port, serve

SECRET_KEY = "shared-secret-key-" + "z" * 32

pytestmark = pytest.mark.timeout(300)


async def test_standalone_simulator_and_an_app_without_a_token(
    sqlite_database: Database, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    port = free_port()
    env = photobot_env(PHOTOBOT_SECRET_KEY=SECRET_KEY, PHOTOBOT_VAR_DIR=str(tmp_path / "var"))
    env.pop("PHOTOBOT_ENV")
    args = ("mercadopago-simulator", "--port", str(port))
    async with photobot_server(*args, env=env, cwd=tmp_path, port=port, ready="/_sim/notifications") as sim:
        sim_url = sim.base_url
        async with httpx.AsyncClient(timeout=5) as c:
            refused = await c.get(f"{sim_url}/v1/payments/1", headers={"Authorization": "Bearer wrong"})
            assert refused.status_code == 401

        async with sqlite_database.session() as session:
            user = await accounts.create_user(session, "standalone-buyer")
            pack = await packs.create_pack(session, "Starter", 10, "9.90", "BRL")
            _, token = await access.create_token(session, "app")
        app_port = free_port()
        settings = make_settings(
            database_url=sqlite_database.url,
            secret_key=SECRET_KEY,
            public_base_url=f"http://127.0.0.1:{app_port}",
            mercadopago_base_url=sim_url,
        )
        async with (
            serve(create_app(settings, run_dispatcher=False), port=app_port) as base,
            httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=True) as client,
        ):
            auth = {"Authorization": f"Bearer {token}"}
            r = await client.post("/v1/purchases", json={"pack_id": pack.id, "user_id": user.id}, headers=auth)
            assert r.status_code == 201, r.text
            created = r.json()
            assert created["checkout_url"].startswith(sim_url)
            pref_id = httpx.URL(created["checkout_url"]).params["pref_id"]
            landed = await client.post(f"{sim_url}/checkout/v1/pay", data={"pref_id": pref_id, "status": "approved"})
            assert landed.status_code == 200 and str(landed.url).startswith(base)
            for _ in range(200):
                view = (await client.get(f"/v1/purchases/{created['id']}", headers=auth)).json()
                if view["status"] == "approved":
                    break
                await asyncio.sleep(0.05)
            assert view["status"] == "approved"
