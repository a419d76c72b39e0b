"""The payment tests' environment: a served app, a Mercado Pago simulator it really talks to, a pack on sale.

`shop` serves `create_app` (web only, no worker: tests drive the reconciler themselves unless they ask for the
worker) with `PHOTOBOT_MERCADOPAGO_BASE_URL` pointing at a `MercadoPagoSimulator` started with a known access
token and webhook secret, so every request in a test crosses real sockets: our app → the simulator's API, the
simulator's signed notification → our webhook. The `database` fixture audits the ledger after every test.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col

from photobot.app import create_app
from photobot.db import Database
from photobot.db.models import CreditLedger, Event, Purchase, User
from photobot.net.tls import client_context
from photobot.payments import packs
from photobot.payments.simulator import MercadoPagoSimulator
from photobot.services import access, accounts
from photobot.settings import Settings
from photobot.signing import mercadopago_signature
from tests.support.servers import free_port, serve

ACCESS_TOKEN = "TEST-1234567890-access-token"
WEBHOOK_SECRET = "whsec-test-0123456789abcdef"


@dataclass
class Shop:
    base_url: str
    client: httpx.AsyncClient
    db: Database
    settings: Settings
    sim: MercadoPagoSimulator
    event_id: int
    user_id: int
    pack_id: int
    kiosk_token: str
    app_token: str
    admin_token: str

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.app_token}"}

    async def buy(self, *, token: str | None = None, **body: Any) -> dict[str, Any]:
        body = body or {"pack_id": self.pack_id, "user_id": self.user_id}
        r = await self.client.post("/v1/purchases", json=body, headers=self.auth(token))
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def purchase(self, purchase_id: str, token: str | None = None) -> dict[str, Any]:
        r = await self.client.get(f"/v1/purchases/{purchase_id}", headers=self.auth(token or self.admin_token))
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def wait_status(self, purchase_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            view = await self.purchase(purchase_id)
            if view["status"] == status:
                return view
            assert time.monotonic() < deadline, f"purchase stayed {view['status']}, wanted {status}"
            await asyncio.sleep(0.05)

    async def click(self, checkout_url: str, choice: str) -> httpx.Response:
        """What a buyer does: open the checkout page, press a button, land on our result page."""
        async with httpx.AsyncClient(timeout=30, follow_redirects=True, verify=client_context()) as browser:
            page = await browser.get(checkout_url)
            assert page.status_code == 200 and "Approve" in page.text and "Reject" in page.text
            origin = checkout_url.split("/checkout/", 1)[0]
            pref_id = httpx.URL(checkout_url).params["pref_id"]
            return await browser.post(f"{origin}/checkout/v1/pay", data={"pref_id": pref_id, "status": choice})

    async def sim_pay(self, purchase_id: str, status: str = "approved", **extra: Any) -> dict[str, Any]:
        """A payment at the simulator for this purchase (as a click would make), optionally without notifying."""
        async with httpx.AsyncClient(timeout=30, verify=client_context()) as c:
            r = await c.post(f"{self.sim.url}/_sim/pay", json={"external_reference": purchase_id, "status": status,
                                                               **extra})  # fmt: skip
            assert r.status_code == 201, r.text
            return dict(r.json())

    async def sim_update(self, payment_id: int | str, status: str, **extra: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30, verify=client_context()) as c:
            r = await c.post(f"{self.sim.url}/_sim/payments/{payment_id}", json={"status": status, **extra})
            assert r.status_code == 200, r.text
            return dict(r.json())

    async def notifications(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=30, verify=client_context()) as c:
            return list((await c.get(f"{self.sim.url}/_sim/notifications")).json())

    async def settle_notifications(self, count: int, timeout: float = 10.0) -> None:
        """Wait until the simulator has had `count` notifications answered, and their background work ran."""
        deadline = time.monotonic() + timeout
        while len([n for n in await self.notifications() if n["status"] is not None]) < count:
            assert time.monotonic() < deadline, "notifications were not answered"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)

    async def balances(self) -> tuple[int, int]:
        async with self.db.session() as session:
            event = await session.get(Event, self.event_id)
            user = await session.get(User, self.user_id)
            assert event is not None and user is not None
            return event.credits, user.credits

    async def ledger_rows(self, reason: str) -> list[CreditLedger]:
        async with self.db.session() as session:
            rows = await session.execute(sa.select(CreditLedger).where(col(CreditLedger.reason) == reason))
            return list(rows.scalars())

    async def row(self, purchase_id: str) -> Purchase:
        async with self.db.session() as session:
            purchase = await session.get(Purchase, purchase_id)
            assert purchase is not None
            return purchase


def signed_headers(data_id: str, *, secret: str = WEBHOOK_SECRET, ts: int | None = None,
                   request_id: str | None = None, sign_id: str | None = None) -> dict[str, str]:  # fmt: skip
    request_id = request_id or str(uuid.uuid4())
    stamp = str(ts if ts is not None else int(time.time()))
    return {"x-signature": mercadopago_signature(secret, sign_id or data_id, request_id, stamp),
            "x-request-id": request_id}  # fmt: skip


async def seed_shop(db: Database, *, user_credits: int = 0, event_credits: int = 0) -> dict[str, Any]:
    async with db.session() as session:
        event = await accounts.create_event(session, "Festa", event_credits)
        user = await accounts.create_user(session, f"buyer-{uuid.uuid4().hex[:6]}", user_credits)
        pack = await packs.create_pack(session, "Starter", 10, "9.90", "BRL")
        _, kiosk = await access.create_token(session, "event", event_id=event.id)
        _, app = await access.create_token(session, "app")
        _, admin = await access.create_token(session, "admin")
    return {"event_id": event.id, "user_id": user.id, "pack_id": pack.id, "kiosk": kiosk, "app": app, "admin": admin}


def shop_settings(make_settings: Callable[..., Settings], db: Database, port: int, sim_url: str,
                  **overrides: Any) -> Settings:  # fmt: skip
    values: dict[str, Any] = {
        "database_url": db.url, "public_base_url": f"http://127.0.0.1:{port}",
        "mercadopago_access_token": ACCESS_TOKEN, "mercadopago_webhook_secret": WEBHOOK_SECRET,
        "mercadopago_base_url": sim_url, "mercadopago_reconcile_after_s": 3600,
    }  # fmt: skip
    values.update(overrides)
    return make_settings(**values)


async def open_shop(
    db: Database, make_settings: Callable[..., Settings], *, run_dispatcher: bool = False, **overrides: Any
) -> AsyncIterator[Shop]:
    seeded = await seed_shop(db)
    async with MercadoPagoSimulator(ACCESS_TOKEN, WEBHOOK_SECRET) as sim:
        port = free_port()
        settings = shop_settings(make_settings, db, port, sim.url, **overrides)
        app = create_app(settings, run_dispatcher=run_dispatcher)
        async with (
            serve(app, port=port) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=30, verify=client_context()) as client,
        ):
            yield Shop(base_url, client, db, settings, sim, seeded["event_id"], seeded["user_id"],
                       seeded["pack_id"], seeded["kiosk"], seeded["app"], seeded["admin"])  # fmt: skip
