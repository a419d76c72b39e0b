"""Mercado Pago notifications: `POST /webhooks/mercadopago?data.id=…&type=payment`.

A notification is a hint, never the truth. The checks run cheapest first and change nothing when they fail:
rate limit by address (429) → body read under a cap (413) → `x-signature` over `data.id` and `x-request-id`
with the webhook secret, `ts` within `PHOTOBOT_MERCADOPAGO_SIGNATURE_TOLERANCE_S` (401, the same answer for
every failure). Then we answer 200 at once and, after the response, read the payment from Mercado Pago
(`GET /v1/payments/{id}`, the only source of status, amount, currency and `external_reference`) and apply it
with `payments.purchases.apply_payment`, which grants at most once however many notifications arrive, in however
many processes. Other topics, unknown payments and other integrations' references get 200 and change nothing;
if reading the payment fails, the reconciler finds it later.
"""

from __future__ import annotations

import logging

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.bus import Bus
from photobot.db import Database
from photobot.logs import bind
from photobot.payments.mercadopago import MercadoPagoClient, MercadoPagoError
from photobot.payments.purchases import apply_payment
from photobot.problems import Problem
from photobot.signing import verify_mercadopago_signature
from photobot.web import context
from photobot.web.body import read_body
from photobot.web.openapi import ProblemOut, operation
from photobot.web.ratelimit import client_address, enforce

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # a notification is a few hundred bytes
OK = {"received": True}


def _data_id(request: Request) -> str:
    """`data.id` from the query (what Mercado Pago signs); older notification styles also send `id`."""
    value = request.query_params.get("data.id") or request.query_params.get("id") or ""
    return value.strip()


@operation(summary="Mercado Pago payment notification (x-signature)", tags=["callbacks"], auth="signed",
           responses={200: None, 401: ProblemOut, 413: ProblemOut, 429: ProblemOut})  # fmt: skip
async def notification(request: Request) -> Response:
    runtime, payments = context.runtime(request), context.payments(request)
    settings = runtime.settings
    await enforce(context.limiter(request), settings.mercadopago_webhook_rate_limit, "callback-ip:mercadopago",
                  client_address(request), "Too many notifications.", shared=False)  # fmt: skip
    await read_body(request, MAX_BODY_BYTES, what="Notification bodies")  # capped; its content is not trusted
    data_id = _data_id(request)
    secret = payments.webhook_secret
    if secret is None or not verify_mercadopago_signature(
        secret, request.headers.get("x-signature"), data_id, request.headers.get("x-request-id"),
        tolerance_s=settings.mercadopago_signature_tolerance_s,
    ):  # fmt: skip
        log.warning("mercadopago notification refused: bad signature")
        raise Problem(401, "unauthorized", "Unauthorized", "The notification could not be authenticated.")
    kind = request.query_params.get("type") or request.query_params.get("topic")
    if kind != "payment" or payments.client is None:
        return JSONResponse(OK)
    task = BackgroundTask(fetch_and_apply, runtime.db, payments.client, data_id, runtime.bus)
    return JSONResponse(OK, background=task)


async def fetch_and_apply(db: Database, client: MercadoPagoClient, payment_id: str, bus: Bus | None = None) -> str:
    """Read the payment at Mercado Pago and apply it; returns the outcome (never raises: it runs after the answer)."""
    with bind(payment_id=payment_id):
        try:
            payment = await client.get_payment(payment_id)
            if payment is None:
                log.info("notification for a payment Mercado Pago does not know: ignored")
                return "unknown"
            return (await apply_payment(db, payment, bus=bus)).outcome
        except MercadoPagoError as exc:
            log.warning("payment lookup failed; the reconciler will retry", extra={"error": str(exc)})
        except Exception:
            log.exception("applying a payment failed; the reconciler will retry")
        return "failed"


routes = [Route("/webhooks/mercadopago", notification, methods=["POST"])]
