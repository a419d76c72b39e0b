"""`POST /v1/purchases` (buy a credit pack through Mercado Pago Checkout Pro) and `GET /v1/purchases/{id}`.

Owners follow the rules of jobs (`web.auth.resolve_owner`): an event token buys for its event, app and admin
tokens name exactly one of `event_id` or `user_id`. The purchase row is committed before Mercado Pago is asked for
a preference (its id is the `external_reference`), so a crash in between leaves a pending purchase that expires,
never a payment we cannot match.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.db.models import Pack, Purchase
from photobot.links import mercadopago_notification_url, purchase_result_url
from photobot.logs import bind
from photobot.payments import purchases
from photobot.payments.mercadopago import MercadoPagoError, PreferenceRequest
from photobot.payments.packs import purchase_view
from photobot.problems import Problem, not_found
from photobot.web import context
from photobot.web.auth import can_see_purchase, require_client, resolve_owner
from photobot.web.body import read_json, validate
from photobot.web.openapi import ProblemOut, operation
from photobot.web.ratelimit import enforce

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024
CREATED_FIELDS = ("id", "status", "checkout_url", "credits", "price", "currency", "created_at")
P = ProblemOut


class PurchaseRequest(BaseModel):
    """Buy one pack for one account."""

    model_config = ConfigDict(extra="forbid")
    pack_id: int = Field(ge=1, le=2**31 - 1)
    event_id: int | None = Field(None, ge=1, le=2**31 - 1)
    user_id: int | None = Field(None, ge=1, le=2**31 - 1)


class PurchaseOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    status: str
    checkout_url: str | None
    credits: int
    price: str
    currency: str
    created_at: str


@operation(summary="Buy a credit pack (Mercado Pago Checkout Pro)", tags=["purchases"], auth="client",
           body=PurchaseRequest,
           responses={201: PurchaseOut, 400: P, 401: P, 403: P, 413: P, 422: P, 429: P, 502: P, 503: P})  # fmt: skip
async def create_purchase(request: Request) -> Response:
    runtime, payments = context.runtime(request), context.payments(request)
    settings = runtime.settings
    client = await require_client(request)
    await enforce(context.limiter(request), settings.purchase_rate_limit, "purchase", f"token:{client.id}",
                  "Too many purchases for this token; slow down.")  # fmt: skip
    body = validate(PurchaseRequest, await read_json(request, MAX_BODY))
    owner = resolve_owner(client, body.event_id, body.user_id)
    mp = payments.client
    if mp is None:
        raise Problem(503, "payments_unavailable", "Service unavailable", "Payments are not configured.")
    async with runtime.db.session() as session:
        try:
            purchase = await purchases.create_purchase(
                session, settings, pack_id=body.pack_id, event_id=owner[0], user_id=owner[1], token_id=client.id
            )
        except purchases.PurchaseRefused as exc:
            raise Problem(422, exc.code, "Invalid request", str(exc)) from None
        pack = await session.get(Pack, body.pack_id)
        assert pack is not None
        title = f"{pack.name} ({purchase.credits} credits)"
    preference = PreferenceRequest(
        title=title, price_cents=purchase.price_cents, currency=purchase.currency, external_reference=purchase.id,
        notification_url=mercadopago_notification_url(settings.public_base_url),
        back_url=purchase_result_url(settings.public_base_url, purchase.id),
        expires_at=purchase.expires_at.isoformat(timespec="milliseconds"),
    )  # fmt: skip
    with bind(purchase_id=purchase.id):
        try:
            created = await mp.create_preference(preference, idempotency_key=purchase.id)
        except MercadoPagoError as exc:
            log.warning("checkout preference not created", extra={"error": str(exc)})
            async with runtime.db.session() as session:
                await purchases.checkout_failed(session, purchase.id)
            raise Problem(
                502, "checkout_unavailable", "Bad gateway", "Mercado Pago did not open a checkout; retry."
            ) from None
        async with runtime.db.session() as session:
            await purchases.attach_checkout(session, purchase.id, created.id, created.init_point)
            stored = await session.get(Purchase, purchase.id, populate_existing=True)
        assert stored is not None
        log.info("purchase created", extra={"pack_id": body.pack_id})
    view = {k: v for k, v in purchase_view(stored).items() if k in CREATED_FIELDS}
    return JSONResponse(view, status_code=201, headers={"Location": f"/v1/purchases/{purchase.id}"})


@operation(summary="Follow a purchase", tags=["purchases"], auth="client",
           responses={200: PurchaseOut, 401: P, 404: P})  # fmt: skip
async def get_purchase(request: Request) -> Response:
    runtime = context.runtime(request)
    client = await require_client(request)
    purchase_id = request.path_params["purchase_id"]
    async with runtime.db.session() as session:
        purchase = await session.get(Purchase, purchase_id) if len(purchase_id) <= 32 else None
    if purchase is None or not can_see_purchase(client, purchase):
        raise not_found("No such purchase.")
    return JSONResponse(purchase_view(purchase), headers={"Cache-Control": "no-cache"})


routes = [
    Route("/v1/purchases", create_purchase, methods=["POST"]),
    Route("/v1/purchases/{purchase_id}", get_purchase, methods=["GET"]),
]
