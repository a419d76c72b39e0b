"""The one owner of purchase rows: create one, apply what Mercado Pago says about a payment, expire old ones.

`apply_payment` takes a `Payment` read from Mercado Pago's API (never a notification body) and makes, in one
transaction, every effect it implies, once:
- approved, our purchase, amount and currency equal to the purchase's → `approved`, the credits granted
  (`credits.grant_purchase`, ledger `purchase` unique per payment id) and a `purchase.approved` webhook message
  written for the operator's systems (`outbound.outbox`). The move is a conditional update from a
  non-approved status, so ten concurrent notifications in two processes grant once; the unique ledger row is
  the backstop;
- approved but a different amount or currency → `rejected` with `error_code = amount_mismatch`, nothing granted,
  an operator alert recorded (`alert_pending`; the reconciler sends it through `PHOTOBOT_OPERATOR_ALERT_URLS`);
- approved again with another payment id (a buyer who paid twice) → recorded as `duplicate_payment` and alerted;
- rejected / cancelled while not approved → that status (a later approved payment still wins);
- refunded / charged back after approval → that status, the unspent credits reversed (`credits.reverse_purchase`),
  a shortfall recorded and alerted;
- pending, in process, unknown ids, other people's references → nothing changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot import metrics
from photobot.bus import Bus
from photobot.db import Database, execute_dml
from photobot.db.models import Event, Pack, Purchase, PurchaseStatus, User, utcnow
from photobot.jobs import credits
from photobot.logs import bind
from photobot.outbound import outbox
from photobot.payments.mercadopago import Payment, format_cents
from photobot.settings import Settings

log = logging.getLogger(__name__)

OPEN = (PurchaseStatus.pending.value, PurchaseStatus.rejected.value, PurchaseStatus.cancelled.value)
"""Statuses an approved payment may still move a purchase out of (a late approval is still paid for)."""
REVERSED = {"refunded": PurchaseStatus.refunded, "charged_back": PurchaseStatus.charged_back}
FAILED = {"rejected": PurchaseStatus.rejected, "cancelled": PurchaseStatus.cancelled}


class PurchaseRefused(ValueError):
    """The pack or the owner does not allow a purchase; the message says why in one line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Applied:
    outcome: (
        str  # granted | duplicate | mismatch | duplicate_payment | rejected | cancelled | reversed | pending | foreign
    )
    purchase_id: str | None = None


async def create_purchase(
    session: AsyncSession, settings: Settings, *, pack_id: int, event_id: int | None, user_id: int | None,
    token_id: int | None,
) -> Purchase:  # fmt: skip
    """A pending purchase of an active pack for exactly one account; price and credits copied from the pack."""
    pack = await session.get(Pack, pack_id)
    if pack is None or not pack.active:
        raise PurchaseRefused("pack_unavailable", f"pack {pack_id} does not exist or is not on sale")
    owner = await session.get(Event, event_id) if event_id is not None else await session.get(User, user_id)
    if owner is None:
        raise PurchaseRefused("owner_not_found", "the event or user does not exist")
    now = utcnow()
    purchase = Purchase(
        pack_id=pack_id, event_id=event_id, user_id=user_id, token_id=token_id, credits=pack.credits,
        price_cents=pack.price_cents, currency=pack.currency, created_at=now, updated_at=now,
        expires_at=now + timedelta(seconds=settings.purchase_expiry_s),
        next_check_at=now + timedelta(seconds=settings.mercadopago_reconcile_after_s),
    )  # fmt: skip
    session.add(purchase)
    await session.flush()
    return purchase


async def attach_checkout(session: AsyncSession, purchase_id: str, preference_id: str, checkout_url: str) -> None:
    await execute_dml(
        session,
        sa.update(Purchase)
        .where(col(Purchase.id) == purchase_id)
        .values(preference_id=preference_id, checkout_url=checkout_url, updated_at=utcnow()),
    )


async def checkout_failed(session: AsyncSession, purchase_id: str) -> None:
    """Mercado Pago did not create the checkout: the purchase can never be paid, so it is cancelled now."""
    await execute_dml(
        session,
        sa.update(Purchase)
        .where(col(Purchase.id) == purchase_id, col(Purchase.status) == PurchaseStatus.pending.value)
        .values(status=PurchaseStatus.cancelled.value, error_code="checkout_unavailable", updated_at=utcnow()),
    )


def _is_ours(reference: str | None) -> bool:
    return bool(reference) and len(reference or "") == 32 and all(c in "0123456789abcdef" for c in reference or "")


async def apply_payment(db: Database, payment: Payment, *, bus: Bus | None = None) -> Applied:
    """Apply one payment as read from Mercado Pago; safe to call any number of times, from any process. `bus`
    wakes the webhook senders when a `purchase.approved` message was written."""
    if not _is_ours(payment.external_reference):
        return Applied("foreign")
    assert payment.external_reference is not None
    with bind(purchase_id=payment.external_reference, payment_id=payment.id):
        try:
            async with db.session() as session:
                applied = await _apply(session, payment, bus)
        except IntegrityError:
            # the unique (reason, payment_id) ledger row: another transaction granted or reversed it first
            applied = Applied("duplicate", payment.external_reference)
        metrics.payment_applied(applied.outcome)
        log.info("payment applied: %s", applied.outcome, extra={"status": payment.status})
        return applied


async def _apply(session: AsyncSession, payment: Payment, bus: Bus | None) -> Applied:
    ref = payment.external_reference
    assert ref is not None
    purchase = await session.get(Purchase, ref)
    if purchase is None:
        return Applied("foreign")
    now = utcnow()
    where = sa.update(Purchase).where(col(Purchase.id) == purchase.id)
    if payment.status == "approved":
        return await _approve(session, purchase, payment, now, bus)
    if payment.status in FAILED:
        moved = await execute_dml(
            session,
            where.where(col(Purchase.status) == PurchaseStatus.pending.value).values(
                status=FAILED[payment.status].value, payment_id=payment.id, payment_status=payment.status,
                updated_at=now,
            ),
        )  # fmt: skip
        return Applied(FAILED[payment.status].value if moved else "duplicate", purchase.id)
    if payment.status in REVERSED:
        return await _reverse(session, purchase, payment, now)
    if purchase.status == PurchaseStatus.pending.value:  # pending, in_process, in_mediation, authorized
        await execute_dml(
            session,
            where.where(col(Purchase.status) == PurchaseStatus.pending.value).values(
                payment_id=payment.id, payment_status=payment.status, updated_at=now
            ),
        )
    return Applied("pending", purchase.id)


async def _approve(
    session: AsyncSession, purchase: Purchase, payment: Payment, now: datetime, bus: Bus | None
) -> Applied:
    where = sa.update(Purchase).where(col(Purchase.id) == purchase.id)
    if payment.amount_cents != purchase.price_cents or payment.currency != purchase.currency:
        if purchase.payment_id == payment.id and purchase.error_code == "amount_mismatch":
            return Applied("duplicate", purchase.id)
        message = (
            f"payment {payment.id} paid {payment.amount_cents} cents {payment.currency}; "
            f"the pack costs {purchase.price_cents} cents {purchase.currency}"
        )
        moved = await execute_dml(
            session,
            where.where(col(Purchase.status).in_(OPEN)).values(
                status=PurchaseStatus.rejected.value, payment_id=payment.id, payment_status=payment.status,
                error_code="amount_mismatch", error_message=message, alert_pending=True, updated_at=now,
            ),
        )  # fmt: skip
        if moved:
            log.error("payment amount mismatch: not granted, operator alerted", extra={"alert": "amount_mismatch"})
        return Applied("mismatch" if moved else "duplicate", purchase.id)

    moved = await execute_dml(
        session,
        where.where(col(Purchase.status).in_(OPEN)).values(
            status=PurchaseStatus.approved.value, payment_id=payment.id, payment_status=payment.status,
            approved_at=now, error_code=None, error_message=None, updated_at=now,
        ),
    )  # fmt: skip
    if moved:
        balance = await credits.grant_purchase(session, purchase, payment.id)
        await outbox.publish(
            session, outbox.PURCHASE_APPROVED, approved_data(purchase, payment.id, balance, now),
            event_id=purchase.event_id, user_id=purchase.user_id, bus=bus,
        )  # fmt: skip
        return Applied("granted", purchase.id)
    current = await session.get(Purchase, purchase.id, populate_existing=True)
    if current is None or current.payment_id == payment.id or current.status != PurchaseStatus.approved.value:
        return Applied("duplicate", purchase.id)
    if current.error_code == "duplicate_payment" and str(payment.id) in (current.error_message or ""):
        return Applied("duplicate", purchase.id)
    await execute_dml(
        session,
        where.values(
            error_code="duplicate_payment", alert_pending=True, updated_at=now,
            error_message=f"payment {payment.id} was approved for a purchase already paid by {current.payment_id}",
        ),
    )  # fmt: skip
    log.error("second approved payment for one purchase: operator alerted", extra={"alert": "duplicate_payment"})
    return Applied("duplicate_payment", purchase.id)


def approved_data(purchase: Purchase, payment_id: str, balance: int, at: datetime) -> dict[str, object]:
    """What `purchase.approved` says: the purchase, what it granted, and the account's balance after it."""
    owner = {"event_id": purchase.event_id} if purchase.event_id is not None else {"user_id": purchase.user_id}
    return {
        "purchase_id": purchase.id, **owner, "pack_id": purchase.pack_id, "credits": purchase.credits,
        "price": format_cents(purchase.price_cents), "currency": purchase.currency, "payment_id": payment_id,
        "balance": balance, "approved_at": outbox.timestamp(at),
    }  # fmt: skip


async def _reverse(session: AsyncSession, purchase: Purchase, payment: Payment, now: datetime) -> Applied:
    status = REVERSED[payment.status]
    base = sa.update(Purchase).where(col(Purchase.id) == purchase.id, col(Purchase.payment_id) == payment.id)
    moved = await execute_dml(
        session,
        base.where(col(Purchase.status) == PurchaseStatus.approved.value).values(
            status=status.value, payment_status=payment.status, updated_at=now
        ),
    )
    if not moved:
        # never granted (a rejected mismatch refunded by the operator): the status follows, nothing to take back
        await execute_dml(
            session,
            base.where(col(Purchase.status) == PurchaseStatus.rejected.value).values(
                status=status.value, payment_status=payment.status, updated_at=now
            ),
        )
        return Applied("duplicate", purchase.id)
    reversed_, shortfall = await credits.reverse_purchase(session, purchase, payment.id)
    values: dict[str, object] = {"reversed_credits": reversed_, "shortfall": shortfall}
    if shortfall:
        values |= {
            "error_code": "reversal_shortfall", "alert_pending": True,
            "error_message": f"{payment.status}: {shortfall} of {purchase.credits} credits were already spent",
        }  # fmt: skip
        log.error("refund after spending: shortfall recorded, operator alerted", extra={"alert": "shortfall"})
    await execute_dml(session, sa.update(Purchase).where(col(Purchase.id) == purchase.id).values(**values))
    return Applied("reversed", purchase.id)


async def expire_due(db: Database, now: datetime | None = None) -> int:
    """Cancel purchases still pending after `PHOTOBOT_PURCHASE_EXPIRY_S`; returns how many."""
    now = now or utcnow()
    async with db.session() as session:
        return await execute_dml(
            session,
            sa.update(Purchase)
            .where(col(Purchase.status) == PurchaseStatus.pending.value, col(Purchase.expires_at) <= now)
            .values(status=PurchaseStatus.cancelled.value, error_code="expired", updated_at=now),
        )


async def due_for_check(db: Database, now: datetime, limit: int) -> list[Purchase]:
    """Purchases whose next look-up is due (oldest first): pending ones, and rejected ones (a declined card, not a
    mismatch) until they expire, since the buyer may pay again on the same checkout and that notification may be
    lost too."""
    retryable = sa.and_(
        col(Purchase.status) == PurchaseStatus.rejected.value,
        col(Purchase.error_code).is_(None),
        col(Purchase.expires_at) > now,
    )
    async with db.session() as session:
        rows = await session.execute(
            sa.select(Purchase)
            .where(sa.or_(col(Purchase.status) == PurchaseStatus.pending.value, retryable))
            .where(col(Purchase.next_check_at) <= now)
            .order_by(col(Purchase.next_check_at))
            .limit(limit)
        )
        return list(rows.scalars())


async def schedule_next_check(db: Database, purchase_id: str, attempts: int, next_check_at: datetime) -> None:
    async with db.session() as session:
        await execute_dml(
            session,
            sa.update(Purchase)
            .where(col(Purchase.id) == purchase_id)
            .values(check_attempts=attempts, next_check_at=next_check_at),
        )


async def pending_alerts(db: Database, limit: int = 20) -> list[Purchase]:
    async with db.session() as session:
        rows = await session.execute(
            sa.select(Purchase)
            .where(col(Purchase.alert_pending).is_(True))
            .order_by(col(Purchase.updated_at))
            .limit(limit)
        )
        return list(rows.scalars())


async def mark_alerted(db: Database, purchase_id: str) -> None:
    async with db.session() as session:
        await execute_dml(
            session,
            sa.update(Purchase).where(col(Purchase.id) == purchase_id).values(alert_pending=False, alerted_at=utcnow()),
        )


async def list_purchases(
    session: AsyncSession, *, event_id: int | None = None, user_id: int | None = None, limit: int = 200
) -> list[Purchase]:
    query = sa.select(Purchase).order_by(col(Purchase.created_at).desc()).limit(limit)
    if event_id is not None:
        query = query.where(col(Purchase.event_id) == event_id)
    if user_id is not None:
        query = query.where(col(Purchase.user_id) == user_id)
    return list((await session.execute(query)).scalars())
