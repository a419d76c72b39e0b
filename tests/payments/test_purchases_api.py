"""`POST /v1/purchases` and `GET /v1/purchases/{id}`: owner rules as for jobs, every refusal a problem with a
stable code and no purchase row, Mercado Pago down → 502 and the purchase cancelled."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlmodel import col

from photobot.db import Database
from photobot.db.models import Purchase
from photobot.payments import packs
from photobot.settings import Settings
from tests.support.payments import Shop, open_shop


async def _count(shop: Shop) -> int:
    async with shop.db.session() as session:
        return int((await session.execute(sa.select(sa.func.count()).select_from(Purchase))).scalar_one())


async def test_refusals_create_nothing(shop: Shop) -> None:
    async with shop.db.session() as session:
        disabled = await packs.create_pack(session, "Old", 5, "4.90", "BRL")
        await packs.disable_pack(session, disabled.id or 0)
    p, u, e = shop.pack_id, shop.user_id, shop.event_id
    cases = [
        (None, {"pack_id": p, "user_id": u}, 401, "unauthorized"),
        ("pbt_unknown", {"pack_id": p, "user_id": u}, 401, "unauthorized"),
        (shop.app_token, {"pack_id": p}, 422, "owner_required"),
        (shop.app_token, {"pack_id": p, "user_id": u, "event_id": e}, 422, "owner_required"),
        (shop.kiosk_token, {"pack_id": p, "user_id": u}, 422, "owner_not_allowed"),
        (shop.kiosk_token, {"pack_id": p, "event_id": e + 1}, 403, "forbidden"),
        (shop.app_token, {"pack_id": disabled.id, "user_id": u}, 422, "pack_unavailable"),
        (shop.app_token, {"pack_id": 9999, "user_id": u}, 422, "pack_unavailable"),
        (shop.app_token, {"pack_id": p, "user_id": 9999}, 422, "owner_not_found"),
        (shop.app_token, {"pack_id": "x", "user_id": u}, 422, "validation_error"),
        (shop.app_token, {"pack_id": p, "user_id": u, "price": "0.01"}, 422, "validation_error"),
    ]
    for token, body, status, code in cases:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = await shop.client.post("/v1/purchases", json=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
    r = await shop.client.post("/v1/purchases", content=b"{not json", headers=shop.auth())
    assert (r.status_code, r.json()["code"]) == (400, "malformed_json")
    r = await shop.client.post("/v1/purchases", content=b"{}" + b" " * 5000, headers=shop.auth())
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
    assert await _count(shop) == 0


async def test_event_and_admin_tokens_buy_for_events(shop: Shop) -> None:
    kiosk = await shop.buy(token=shop.kiosk_token, pack_id=shop.pack_id)  # a kiosk buys for its own event
    admin = await shop.buy(token=shop.admin_token, pack_id=shop.pack_id, event_id=shop.event_id)
    async with shop.db.session() as session:
        rows = (await session.execute(sa.select(Purchase).order_by(col(Purchase.created_at)))).scalars().all()
    assert [(r.event_id, r.user_id) for r in rows] == [(shop.event_id, None)] * 2
    assert {kiosk["id"], admin["id"]} == {r.id for r in rows}


async def test_who_sees_a_purchase(shop: Shop) -> None:
    mine = await shop.buy()
    event_purchase = await shop.buy(token=shop.kiosk_token, pack_id=shop.pack_id)
    for token, purchase_id, status in [
        (shop.app_token, mine["id"], 200),
        (shop.admin_token, mine["id"], 200),
        (shop.kiosk_token, mine["id"], 404),
        (shop.kiosk_token, event_purchase["id"], 200),
        (shop.app_token, event_purchase["id"], 404),
        (shop.app_token, "0" * 32, 404),
        (shop.app_token, "x" * 300, 404),
    ]:
        r = await shop.client.get(f"/v1/purchases/{purchase_id}", headers=shop.auth(token))
        assert r.status_code == status, (token, purchase_id)
    r = await shop.client.get(f"/v1/purchases/{mine['id']}")
    assert r.status_code == 401
    view = (await shop.client.get(f"/v1/purchases/{mine['id']}", headers=shop.auth())).json()
    assert view["status"] == "pending" and view["checkout_url"] == mine["checkout_url"]
    assert (await shop.client.get("/purchases/" + "0" * 32 + "/result")).status_code == 404


async def test_mercado_pago_down_answers_502_and_cancels(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    async for shop in open_shop(database, make_settings, mercadopago_access_token="TEST-wrong-token"):
        r = await shop.client.post("/v1/purchases", json={"pack_id": shop.pack_id, "user_id": shop.user_id},
                                   headers=shop.auth())  # fmt: skip
        assert (r.status_code, r.json()["code"]) == (502, "checkout_unavailable")
        async with shop.db.session() as session:
            rows = (await session.execute(sa.select(Purchase))).scalars().all()
        assert [(p.status, p.error_code) for p in rows] == [("cancelled", "checkout_unavailable")]
        assert "TEST-wrong-token" not in r.text


async def test_production_without_a_token_refuses_purchases(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    async for shop in open_shop(database, make_settings, env="production", mercadopago_access_token=None):
        r = await shop.client.post("/v1/purchases", json={"pack_id": shop.pack_id, "user_id": shop.user_id},
                                   headers=shop.auth())  # fmt: skip
        assert (r.status_code, r.json()["code"]) == (503, "payments_unavailable")
        assert await _count(shop) == 0
