"""Lost notifications cost latency, not credits: the worker looks pending purchases up at Mercado Pago.

Every tick (`PHOTOBOT_POLL_INTERVAL_S`, at least every few seconds) the reconciler
1. cancels purchases still pending after `PHOTOBOT_PURCHASE_EXPIRY_S`;
2. for each pending purchase (or rejected one, until it expires: the buyer may try another card) whose
   `next_check_at` has come (first `PHOTOBOT_MERCADOPAGO_RECONCILE_AFTER_S` after
   creation), searches `GET /v1/payments/search?external_reference={id}` and applies every payment found through
   `purchases.apply_payment` (the same function the webhook uses, so a notification and the reconciler racing
   still grant once); a purchase still pending is looked at again after a doubling delay (capped at an hour);
3. sends the operator alerts recorded on purchases (amount mismatch, second payment, refund shortfall) to
   `PHOTOBOT_OPERATOR_ALERT_URLS` through Apprise; without URLs the alert is the ERROR log line already written.
Several workers may run it at once: applying a payment twice changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from photobot.db.models import Purchase, utcnow
from photobot.notify.delivery import AppriseSender
from photobot.notify.notifier import scrubber_for
from photobot.payments import purchases
from photobot.payments.gateway import Payments
from photobot.payments.mercadopago import MercadoPagoError
from photobot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 3600.0
BATCH = 50


def next_delay(settings_after_s: int, attempts: int) -> float:
    """Seconds until the next look-up after `attempts` look-ups: the reconcile delay, doubling, capped."""
    return float(min(settings_after_s * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


class Reconciler:
    def __init__(self, runtime: Runtime, payments: Payments, *, sender: AppriseSender | None = None) -> None:
        self.runtime, self.payments = runtime, payments
        self.sender = sender or AppriseSender(timeout_s=10.0, scrubber=scrubber_for(runtime.settings))

    async def run_once(self, now: datetime | None = None) -> int:
        """One pass; returns how many purchases were looked up."""
        now = now or utcnow()
        db, settings = self.runtime.db, self.runtime.settings
        expired = await purchases.expire_due(db, now)
        if expired:
            log.info("purchases expired", extra={"count": expired})
        looked = 0
        client = self.payments.client
        if client is not None:
            for purchase in await purchases.due_for_check(db, now, BATCH):
                looked += 1
                try:
                    found = await client.search_payments(purchase.id)
                    for payment in found:
                        await purchases.apply_payment(db, payment, bus=self.runtime.bus)
                except MercadoPagoError as exc:
                    log.warning("payment search failed", extra={"purchase_id": purchase.id, "error": str(exc)})
                attempts = purchase.check_attempts + 1
                delay = next_delay(settings.mercadopago_reconcile_after_s, attempts + 1)
                await purchases.schedule_next_check(db, purchase.id, attempts, now + timedelta(seconds=delay))
        await self.send_alerts()
        return looked

    async def send_alerts(self) -> None:
        urls = [u.get_secret_value() for u in self.runtime.settings.operator_alert_urls]
        for purchase in await purchases.pending_alerts(self.runtime.db):
            if urls:
                title, body = alert_message(purchase)
                result = await self.sender.send(urls, title=title, body=body)
                if not result.ok and not result.permanent:
                    log.warning("payment alert not sent; will retry", extra={"purchase_id": purchase.id})
                    continue
            await purchases.mark_alerted(self.runtime.db, purchase.id)

    async def run_forever(self, stop: asyncio.Event) -> None:
        interval = min(max(self.runtime.settings.poll_interval_s, 0.2), 5.0)
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("payment reconciler pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


def alert_message(purchase: Purchase) -> tuple[str, str]:
    owner = f"event {purchase.event_id}" if purchase.event_id is not None else f"user {purchase.user_id}"
    title = f"Photobot payment needs attention: {purchase.error_code}"
    body = (
        f"Purchase {purchase.id} ({owner}, {purchase.credits} credits, payment {purchase.payment_id}): "
        f"{purchase.error_message or purchase.error_code}. Status: {purchase.status}."
    )
    return title, body
