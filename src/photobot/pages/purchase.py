"""The back URL of every checkout: `/purchases/{id}/result`, a small page saying where the purchase stands.

Mercado Pago sends the buyer here with `status=…` in the query; that word is only shown as what the buyer
did. The credits follow the purchase row, which only a verified payment changes, so the page reads the row and
refreshes itself while the purchase is pending. The id is 128 random bits: the page shows no owner, only status.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from photobot.db.models import Purchase, PurchaseStatus
from photobot.payments.mercadopago import format_cents
from photobot.web import context
from photobot.web.openapi import operation

MESSAGES = {
    PurchaseStatus.pending: "Waiting for Mercado Pago to confirm the payment…",
    PurchaseStatus.approved: "Payment approved: the credits are on the account.",
    PurchaseStatus.rejected: "The payment was not approved. No credits were added.",
    PurchaseStatus.cancelled: "This purchase was cancelled.",
    PurchaseStatus.refunded: "This payment was refunded.",
    PurchaseStatus.charged_back: "This payment was charged back.",
}


@operation(summary="Checkout result page (HTML; Mercado Pago's back URL)", tags=["pages"], content="text/html",
           responses={200: None, 404: None})  # fmt: skip
async def result_page(request: Request) -> Response:
    purchase_id = request.path_params["purchase_id"]
    async with context.runtime(request).db.session() as session:
        purchase = await session.get(Purchase, purchase_id) if len(purchase_id) <= 32 else None
    if purchase is None:
        return HTMLResponse("<!doctype html><title>Not found</title><h1>No such purchase</h1>", status_code=404)
    status = PurchaseStatus(purchase.status)
    refresh = "<meta http-equiv='refresh' content='3'>" if status is PurchaseStatus.pending else ""
    price = f"{format_cents(purchase.price_cents)} {purchase.currency}"
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'>{refresh}<title>Purchase {status.value}</title>"
        "<meta name='viewport' content='width=device-width'></head><body style='font-family:sans-serif;"
        "max-width:32em;margin:3em auto'>"
        f"<h1>{purchase.credits} credits — {html.escape(price)}</h1>"
        f"<p id='status' data-status='{status.value}'>{html.escape(MESSAGES[status])}</p></body></html>"
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


routes = [Route("/purchases/{purchase_id}/result", result_page, methods=["GET"])]
