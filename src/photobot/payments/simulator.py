"""A Mercado Pago stand-in: a real HTTP server speaking the calls we use, a checkout page and signed notifications.

`photobot serve` starts it in-process when `PHOTOBOT_MERCADOPAGO_ACCESS_TOKEN` is unset (as the kie.ai
simulator), and `photobot mercadopago-simulator` runs it alone. What it speaks, as Mercado Pago documents it:
- `POST /checkout/preferences` (Bearer token) → `{"id", "init_point", "sandbox_init_point", …}`;
- `GET /checkout/v1/redirect?pref_id=…` → the checkout page: the pack, its price, "Approve" / "Reject" buttons
  (and "Leave pending"); a click creates a payment, POSTs a signed notification to the preference's
  `notification_url` (`?data.id=…&type=payment`, `x-signature: ts=…,v1=…`, `x-request-id`) and redirects the
  buyer to the back URL with `payment_id`, `status` and `external_reference`;
- `GET /v1/payments/{id}` and `GET /v1/payments/search?external_reference=…` (Bearer token).
Test and demo controls (unauthenticated: bind to loopback):
- `POST /_sim/pay` `{"preference_id", "status", "amount"?, "notify"?: true}` → the payment (a click, scripted);
- `POST /_sim/payments/{id}` `{"status": "approved" | "refunded" | "charged_back" | …, "notify"?: true}`;
- `POST /_sim/payments/{id}/notify` `{"count"?: 1}` → send the notification again (duplicates);
- `GET /_sim/notifications` → every notification sent and the status our webhook answered.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from photobot.net.tls import client_context
from photobot.payments.mercadopago import format_cents, to_cents
from photobot.providers.simulator.runner import RunningServer, start_server
from photobot.signing import mercadopago_signature

log = logging.getLogger(__name__)

SIMULATOR_ACCESS_TOKEN = "TEST-photobot-simulator-token"  # noqa: S105 - the simulator's public test token
STATUSES = {"approved", "pending", "in_process", "rejected", "cancelled", "refunded", "charged_back"}


@dataclass
class SimState:
    access_token: str
    webhook_secret: str
    base_url: str = ""
    preferences: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    next_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1_300_000_001))
    http: httpx.AsyncClient | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)


def _state(request: Request) -> SimState:
    state: SimState = request.app.state.mp
    return state


def _authorized(request: Request) -> bool:
    return request.headers.get("authorization", "") == f"Bearer {_state(request).access_token}"


def _unauthorized() -> Response:
    return JSONResponse({"message": "invalid access token", "error": "unauthorized", "status": 401}, 401)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def create_preference(request: Request) -> Response:
    if not _authorized(request):
        return _unauthorized()
    sim = _state(request)
    try:
        body = await request.json()
        item = body["items"][0]
        unit_price, currency = item["unit_price"], item["currency_id"]
        if to_cents(unit_price) is None or not isinstance(currency, str):
            raise ValueError
    except (ValueError, KeyError, IndexError, TypeError):
        return JSONResponse({"message": "invalid preference", "error": "bad_request", "status": 400}, 400)
    pref_id = f"{next(sim.next_id)}-{uuid.uuid4()}"
    init_point = f"{sim.base_url}/checkout/v1/redirect?{urlencode({'pref_id': pref_id})}"
    preference = {
        "id": pref_id,
        "items": body["items"],
        "external_reference": body.get("external_reference"),
        "notification_url": body.get("notification_url"),
        "back_urls": body.get("back_urls") or {},
        "auto_return": body.get("auto_return"),
        "date_created": _now(),
        "init_point": init_point,
        "sandbox_init_point": init_point,
    }
    sim.preferences[pref_id] = preference
    return JSONResponse(preference, 201)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<meta name='viewport' content='width=device-width'><style>body{font-family:sans-serif;max-width:32em;"
        "margin:3em auto}button{font-size:1.1em;margin:.3em;padding:.5em 1.2em}</style></head>"
        f"<body><p><small>Mercado Pago simulator — no money moves</small></p>{body}</body></html>"
    )


async def checkout_page(request: Request) -> Response:
    sim = _state(request)
    pref = sim.preferences.get(request.query_params.get("pref_id", ""))
    if pref is None:
        return _page("Not found", "<h1>Unknown checkout</h1>")
    item = pref["items"][0]
    pref_id = html.escape(pref["id"])
    price = html.escape(f"{format_cents(to_cents(item['unit_price']) or 0)} {item['currency_id']}")
    buttons = "".join(
        f"<button name='status' value='{value}'>{label}</button>"
        for value, label in (("approved", "Approve"), ("rejected", "Reject"), ("pending", "Leave pending"))
    )
    return _page(
        "Checkout",
        f"<h1>{html.escape(str(item.get('title', '')))}</h1><p>Total: <b>{price}</b></p>"
        f"<form method='post' action='/checkout/v1/pay'><input type='hidden' name='pref_id' value='{pref_id}'>"
        f"{buttons}</form>",
    )


def _make_payment(sim: SimState, pref: dict[str, Any], status: str, amount: Any = None) -> dict[str, Any]:
    item = pref["items"][0]
    payment_id = str(next(sim.next_id))
    cents = to_cents(amount if amount is not None else item["unit_price"]) or 0
    payment = {
        "id": int(payment_id),
        "status": status,
        "status_detail": {"approved": "accredited", "rejected": "cc_rejected_other_reason"}.get(status, status),
        "transaction_amount": float(format_cents(cents)),
        "currency_id": item["currency_id"],
        "external_reference": pref.get("external_reference"),
        "preference_id": pref["id"],
        "description": item.get("title"),
        "date_created": _now(),
        "date_approved": _now() if status == "approved" else None,
        "date_last_updated": _now(),
        "live_mode": False,
        "_notification_url": pref.get("notification_url"),
    }
    sim.payments[payment_id] = payment
    return payment


def _public(payment: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payment.items() if not k.startswith("_")}


async def pay_form(request: Request) -> Response:
    """The buyer clicked a button on the checkout page."""
    sim = _state(request)
    form = await request.form()
    pref = sim.preferences.get(str(form.get("pref_id", "")))
    status = str(form.get("status", ""))
    if pref is None or status not in ("approved", "rejected", "pending"):
        return _page("Bad request", "<h1>Unknown checkout or choice</h1>")
    payment = _make_payment(sim, pref, status)
    _notify_later(sim, payment, "payment.created")
    back = (pref["back_urls"] or {}).get({"approved": "success", "rejected": "failure"}.get(status, "pending"))
    if not back:
        return _page("Done", f"<h1>Payment {payment['id']}: {status}</h1>")
    query = {
        "collection_id": payment["id"], "collection_status": status, "payment_id": payment["id"],
        "status": status, "external_reference": pref.get("external_reference") or "", "preference_id": pref["id"],
    }  # fmt: skip
    return RedirectResponse(f"{back}{'&' if '?' in back else '?'}{urlencode(query)}", status_code=303)


async def get_payment(request: Request) -> Response:
    if not _authorized(request):
        return _unauthorized()
    payment = _state(request).payments.get(request.path_params["payment_id"])
    if payment is None:
        return JSONResponse({"message": "Payment not found", "error": "not_found", "status": 404}, 404)
    return JSONResponse(_public(payment))


async def search_payments(request: Request) -> Response:
    if not _authorized(request):
        return _unauthorized()
    ref = request.query_params.get("external_reference")
    found = [_public(p) for p in _state(request).payments.values() if ref is None or p["external_reference"] == ref]
    found.sort(key=lambda p: p["date_created"], reverse=request.query_params.get("criteria") == "desc")
    return JSONResponse({"paging": {"total": len(found), "limit": 30, "offset": 0}, "results": found[:30]})


async def sim_pay(request: Request) -> Response:
    sim = _state(request)
    body = await request.json()
    pref = sim.preferences.get(str(body.get("preference_id", "")))
    if pref is None and body.get("external_reference"):
        pref = next(
            (p for p in sim.preferences.values() if p["external_reference"] == body["external_reference"]), None
        )
    status = body.get("status", "approved")
    if pref is None or status not in STATUSES:
        return JSONResponse({"error": "unknown preference or status"}, 400)
    payment = _make_payment(sim, pref, status, body.get("amount"))
    if body.get("notify", True):
        await _notify(sim, payment, "payment.created")
    return JSONResponse(_public(payment), 201)


async def sim_update(request: Request) -> Response:
    sim = _state(request)
    payment = sim.payments.get(request.path_params["payment_id"])
    body = await request.json()
    if payment is None or body.get("status") not in STATUSES:
        return JSONResponse({"error": "unknown payment or status"}, 400)
    payment["status"] = body["status"]
    payment["status_detail"] = body["status"]
    payment["date_last_updated"] = _now()
    if body["status"] == "approved":
        payment["date_approved"] = _now()
    if body.get("notify", True):
        await _notify(sim, payment, "payment.updated")
    return JSONResponse(_public(payment))


async def sim_notify(request: Request) -> Response:
    sim = _state(request)
    payment = sim.payments.get(request.path_params["payment_id"])
    if payment is None:
        return JSONResponse({"error": "unknown payment"}, 404)
    body = await request.json() if await request.body() else {}
    count = int(body.get("count", 1))
    results = await asyncio.gather(*(_notify(sim, payment, "payment.updated") for _ in range(count)))
    return JSONResponse({"sent": count, "answers": results})


async def sim_notifications(request: Request) -> Response:
    return JSONResponse(_state(request).notifications)


def _notify_later(sim: SimState, payment: dict[str, Any], action: str) -> None:
    task = asyncio.get_running_loop().create_task(_notify_quietly(sim, payment, action))
    sim.background.add(task)
    task.add_done_callback(sim.background.discard)


async def _notify_quietly(sim: SimState, payment: dict[str, Any], action: str) -> None:
    await asyncio.sleep(0.05)  # after the redirect, as the real thing
    await _notify(sim, payment, action)


async def _notify(sim: SimState, payment: dict[str, Any], action: str) -> int | None:
    """POST a signed notification to the payment's notification_url; returns the HTTP status answered."""
    url = payment.get("_notification_url")
    if not url or sim.http is None:
        return None
    data_id, request_id, ts = str(payment["id"]), str(uuid.uuid4()), str(int(time.time() * 1000))
    headers = {"x-signature": mercadopago_signature(sim.webhook_secret, data_id, request_id, ts),
               "x-request-id": request_id}  # fmt: skip
    body = {"action": action, "api_version": "v1", "data": {"id": data_id}, "date_created": _now(),
            "id": next(sim.next_id), "live_mode": False, "type": "payment", "user_id": "1"}  # fmt: skip
    target = f"{url}{'&' if '?' in url else '?'}{urlencode({'data.id': data_id, 'type': 'payment'})}"
    record: dict[str, Any] = {"payment_id": data_id, "action": action, "status": None, "at": _now()}
    sim.notifications.append(record)
    try:
        response = await sim.http.post(target, json=body, headers=headers, timeout=10)
        record["status"] = response.status_code
    except httpx.HTTPError as exc:
        record["error"] = type(exc).__name__
        log.warning("simulated notification not delivered", extra={"error": type(exc).__name__})
    return record["status"]  # type: ignore[no-any-return]


def create_app(state: SimState) -> Starlette:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(verify=client_context()) as client:
            state.http = client
            try:
                yield
            finally:
                for task in list(state.background):
                    task.cancel()
                state.http = None

    routes = [
        Route("/checkout/preferences", create_preference, methods=["POST"]),
        Route("/checkout/v1/redirect", checkout_page, methods=["GET"]),
        Route("/checkout/v1/pay", pay_form, methods=["POST"]),
        Route("/v1/payments/search", search_payments, methods=["GET"]),
        Route("/v1/payments/{payment_id}", get_payment, methods=["GET"]),
        Route("/_sim/pay", sim_pay, methods=["POST"]),
        Route("/_sim/payments/{payment_id}", sim_update, methods=["POST"]),
        Route("/_sim/payments/{payment_id}/notify", sim_notify, methods=["POST"]),
        Route("/_sim/notifications", sim_notifications, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.mp = state
    return app


class MercadoPagoSimulator:
    """`async with MercadoPagoSimulator(token, secret) as sim:` — the app on a free loopback port."""

    def __init__(
        self,
        access_token: str = SIMULATOR_ACCESS_TOKEN,
        webhook_secret: str = "simulator-secret",  # noqa: S107 - a test double's default
    ) -> None:
        self.state = SimState(access_token=access_token, webhook_secret=webhook_secret)
        self.app = create_app(self.state)
        self._running: RunningServer | None = None

    @property
    def url(self) -> str:
        if self._running is None:
            raise RuntimeError("simulator is not running")
        return self._running.url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> MercadoPagoSimulator:
        self._running = await start_server(self.app, host, port)
        self.state.base_url = self._running.url
        return self

    async def stop(self) -> None:
        if self._running is not None:
            await self._running.stop()
            self._running = None

    async def __aenter__(self) -> MercadoPagoSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def run_standalone(access_token: str, webhook_secret: str, host: str = "127.0.0.1", port: int = 8766) -> None:
    """Blocking: serve the simulator until Ctrl-C."""
    state = SimState(access_token=access_token, webhook_secret=webhook_secret, base_url=f"http://{host}:{port}")
    uvicorn.run(create_app(state), host=host, port=port, log_level="info", access_log=False)
