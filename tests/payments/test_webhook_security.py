"""`POST /webhooks/mercadopago` refuses what it cannot authenticate (401, nothing changes) and ignores what is not
ours (200, nothing changes): forged signature, stale `ts`, a signature made for another id, missing headers,
oversized bodies, other topics, payments Mercado Pago does not know, other integrations' references."""

from __future__ import annotations

import time
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photobot.signing import mercadopago_manifest, mercadopago_signature, verify_mercadopago_signature
from tests.support.payments import ACCESS_TOKEN, WEBHOOK_SECRET, Shop, signed_headers


async def _notify(shop: Shop, data_id: str, headers: dict[str, str], **params: str) -> httpx.Response:
    query = {"data.id": data_id, "type": "payment", **params}
    body = {"action": "payment.updated", "type": "payment", "data": {"id": data_id}}
    return await shop.client.post("/webhooks/mercadopago", params=query, json=body, headers=headers)


async def _state(shop: Shop, purchase_id: str) -> tuple[Any, ...]:
    row = await shop.row(purchase_id)
    return row.status, row.payment_id, await shop.balances(), len(await shop.ledger_rows("purchase"))


async def test_forged_stale_and_misdirected_signatures_are_refused(shop: Shop) -> None:
    created = await shop.buy()
    payment = await shop.sim_pay(created["id"], notify=False)
    pid = str(payment["id"])
    before = await _state(shop, created["id"])
    good = signed_headers(pid)
    cases = {
        "forged": {**good, "x-signature": good["x-signature"].split("v1=")[0] + "v1=" + "0" * 64},
        "wrong secret": signed_headers(pid, secret="not-the-secret"),
        "stale ts": signed_headers(pid, ts=int(time.time()) - 3600),
        "future ts": signed_headers(pid, ts=int(time.time()) + 3600),
        "signed for another id": signed_headers(pid, sign_id="999999999"),
        "other request id": {**good, "x-request-id": "another-request"},
        "no signature": {"x-request-id": good["x-request-id"]},
        "no request id": {"x-signature": good["x-signature"]},
        "garbage": {"x-signature": "ts=abc,v1=;;;", "x-request-id": "x"},
        "stale ms": signed_headers(pid, ts=int(time.time() * 1000) - 3_600_000),
    }
    for name, headers in cases.items():
        r = await _notify(shop, pid, headers)
        assert r.status_code == 401, name
        assert r.json()["code"] == "unauthorized", name
    assert await _state(shop, created["id"]) == before == ("pending", None, (0, 0), 0)
    # the same payment with a good signature (ts in milliseconds, as Mercado Pago sends today) is applied
    r = await _notify(shop, pid, signed_headers(pid, ts=int(time.time() * 1000)))
    assert r.status_code == 200
    await shop.wait_status(created["id"], "approved")


async def test_bodies_over_the_cap_are_refused(shop: Shop) -> None:
    created = await shop.buy()
    pid = str((await shop.sim_pay(created["id"], notify=False))["id"])
    r = await shop.client.post("/webhooks/mercadopago", params={"data.id": pid, "type": "payment"},
                               content=b"x" * 20_000, headers=signed_headers(pid))  # fmt: skip
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert (await shop.row(created["id"])).status == "pending"


async def test_other_topics_unknown_and_foreign_payments_change_nothing(shop: Shop) -> None:
    created = await shop.buy()
    pid = str((await shop.sim_pay(created["id"], notify=False))["id"])
    r = await _notify(shop, pid, signed_headers(pid), type="merchant_order")
    assert r.status_code == 200
    r = await _notify(shop, "424242", signed_headers("424242"))  # Mercado Pago does not know it
    assert r.status_code == 200
    # a payment of another integration (external_reference not ours) at the same Mercado Pago account
    async with httpx.AsyncClient(timeout=30) as c:
        pref = await c.post(f"{shop.sim.url}/checkout/preferences", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
                            json={"items": [{"title": "x", "quantity": 1, "unit_price": 9.9, "currency_id": "BRL"}],
                                  "external_reference": "order-77"})  # fmt: skip
        other = await c.post(f"{shop.sim.url}/_sim/pay", json={"preference_id": pref.json()["id"], "notify": False})
    oid = str(other.json()["id"])
    assert (await _notify(shop, oid, signed_headers(oid))).status_code == 200
    await _notify(shop, pid.upper(), signed_headers(pid))  # digits: lowercasing changes nothing, still valid
    await shop.wait_status(created["id"], "approved")
    assert await shop.balances() == (0, 10)


def test_manifest_is_the_documented_template() -> None:
    assert mercadopago_manifest("123", "req-1", "1704908010") == "id:123;request-id:req-1;ts:1704908010;"
    assert mercadopago_manifest("ABC123", "r", "1") == "id:abc123;request-id:r;ts:1;"
    header = mercadopago_signature("s", "ABC123", "r", "1700000000")
    assert verify_mercadopago_signature("s", header, "abc123", "r", tolerance_s=10, now=1700000005)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(header=st.one_of(st.none(), st.text(max_size=400)), data_id=st.text(max_size=120),
       request_id=st.one_of(st.none(), st.text(max_size=60)))  # fmt: skip
def test_hostile_headers_never_verify_and_never_raise(header: str | None, data_id: str, request_id: str | None) -> None:
    assert verify_mercadopago_signature(WEBHOOK_SECRET, header, data_id, request_id, tolerance_s=600) is False
