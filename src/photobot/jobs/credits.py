"""Credits: a conditional balance update plus an append-only ledger row, always in one transaction.

- `grant`: add credits (CLI, admin API); ledger `grant` row, `granted_total` grows.
- `reserve`: at accept time; `UPDATE … SET credits = credits - cost WHERE id = ? AND credits >= cost`.
  Zero rows updated means no credit: nothing else happens and the caller answers 402.
- `settle`: the job completed; the reservation is spent (ledger row with delta 0).
- `release`: the job failed; the reservation goes back to the balance.
- `grant_purchase`: a pack's credits for an approved Mercado Pago payment (ledger `purchase`, payment id);
- `reverse_purchase`: after a refund or chargeback, take back what is still unspent (`purchase_reversal`),
  never below zero; returns how much could not be taken back (the shortfall).
The unique index on `(reason, payment_id)` makes a second grant or reversal for one payment fail loudly.
The unique index on `(job_id, reason)` makes a second settle or release fail loudly instead of counting twice;
callers only reach settle/release through a conditional job-state update, so that never happens in practice.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot import metrics
from photobot.db.models import CreditLedger, Event, Job, LedgerReason, Purchase, User, UTCDateTime, table_of


class NoCredits(Exception):
    """The account cannot cover the cost."""


@dataclass(frozen=True, slots=True)
class _Account:
    """The account row that pays: an event (B2B) or a user (B2C), and the ledger columns naming it."""

    table: sa.Table
    kind: str  # "event" | "user"
    id: int

    def ledger(
        self,
        delta: int,
        reason: LedgerReason,
        job_id: str | None = None,
        note: str | None = None,
        *,
        purchase_id: str | None = None,
        payment_id: str | None = None,
    ) -> CreditLedger:
        event_id, user_id = (self.id, None) if self.kind == "event" else (None, self.id)
        return CreditLedger(
            delta=delta, reason=reason, job_id=job_id, note=note, event_id=event_id, user_id=user_id,
            purchase_id=purchase_id, payment_id=payment_id,
        )  # fmt: skip


def _account(job_or_owner: Job | Purchase | tuple[int | None, int | None]) -> _Account:
    if isinstance(job_or_owner, Job | Purchase):
        event_id, user_id = job_or_owner.event_id, job_or_owner.user_id
    else:
        event_id, user_id = job_or_owner
    if event_id is not None:
        return _Account(table_of(Event), "event", event_id)
    assert user_id is not None
    return _Account(table_of(User), "user", user_id)


async def grant(
    session: AsyncSession,
    *,
    event_id: int | None = None,
    user_id: int | None = None,
    amount: int,
    note: str | None = None,
) -> int:
    """Add `amount` (> 0) credits; returns the new balance."""
    if amount <= 0:
        raise ValueError("amount must be positive")
    account = _account((event_id, user_id))
    c = account.table.c
    result = await session.execute(
        sa.update(account.table)
        .where(c.id == account.id)
        .values(credits=c.credits + amount, granted_total=c.granted_total + amount)
        .returning(c.credits)
    )
    balance = result.scalar_one_or_none()
    if balance is None:
        raise LookupError(f"{account.kind} {account.id} not found")
    session.add(account.ledger(amount, LedgerReason.grant, note=note))
    metrics.credit_operation("grant", account.kind, amount)
    return int(balance)


async def reserve(session: AsyncSession, job: Job) -> int:
    """Take `job.cost` from the owner's balance for this job, or raise NoCredits; returns the new balance."""
    account = _account(job)
    if job.cost == 0:
        return -1
    c = account.table.c
    result = await session.execute(
        sa.update(account.table)
        .where(c.id == account.id, c.credits >= job.cost)
        .values(credits=c.credits - job.cost)
        .returning(c.credits)
    )
    balance = result.scalar_one_or_none()
    if balance is None:
        metrics.credit_operation("reserve_refused", account.kind)
        raise NoCredits()
    session.add(account.ledger(-job.cost, LedgerReason.reserve, job.id))
    metrics.credit_operation("reserve", account.kind, job.cost)
    return int(balance)


async def settle(session: AsyncSession, job: Job) -> None:
    """Mark the job's reservation as spent. Call only after moving the job to `completed`."""
    if job.cost == 0:
        return
    session.add(_account(job).ledger(0, LedgerReason.settle, job.id))
    settled(job)


def settle_cte(moved: sa.CTE) -> sa.CTE:
    """`settle` inside a PostgreSQL statement: the ledger row for the job `moved` (a `states.transition_ctes` move
    to `completed`) at `:now`, written only when that move won and the job cost something. Call `settled(job)`
    once the statement returned the job."""
    ledger = table_of(CreditLedger)
    spent = sa.select(
        moved.c.event_id, moved.c.user_id, moved.c.id, sa.literal(0), sa.literal(LedgerReason.settle.value),
        sa.bindparam("now", None, type_=UTCDateTime()),
    ).where(moved.c.cost > 0)  # fmt: skip
    columns = ["event_id", "user_id", "job_id", "delta", "reason", "created_at"]
    return sa.insert(ledger).from_select(columns, spent).cte("settled")


def settled(job: Job) -> None:
    """Count a settlement (the ledger row was written by `settle` or a statement built with `settle_cte`)."""
    if job.cost:
        metrics.credit_operation("settle", _account(job).kind, job.cost)


async def release(session: AsyncSession, job: Job) -> None:
    """Give the job's reservation back. Call only after moving the job to `failed`."""
    if job.cost == 0:
        return
    account = _account(job)
    c = account.table.c
    await session.execute(sa.update(account.table).where(c.id == account.id).values(credits=c.credits + job.cost))
    session.add(account.ledger(job.cost, LedgerReason.release, job.id))
    metrics.credit_operation("release", account.kind, job.cost)


async def grant_purchase(session: AsyncSession, purchase: Purchase, payment_id: str) -> int:
    """Add a purchase's credits for one approved payment; returns the new balance.

    Call only after moving the purchase to `approved` with a conditional update; the ledger row is unique per
    payment, so even a caller that got that wrong cannot grant twice (the transaction fails instead)."""
    account = _account(purchase)
    c = account.table.c
    result = await session.execute(
        sa.update(account.table)
        .where(c.id == account.id)
        .values(credits=c.credits + purchase.credits, granted_total=c.granted_total + purchase.credits)
        .returning(c.credits)
    )
    balance = result.scalar_one_or_none()
    if balance is None:
        raise LookupError(f"{account.kind} {account.id} not found")
    session.add(account.ledger(purchase.credits, LedgerReason.purchase, purchase_id=purchase.id, payment_id=payment_id))
    await session.flush()  # the unique (reason, payment_id) index speaks now, inside the caller's transaction
    metrics.credit_operation("purchase", account.kind, purchase.credits)
    return int(balance)


async def reverse_purchase(session: AsyncSession, purchase: Purchase, payment_id: str) -> tuple[int, int]:
    """Take back a refunded or charged-back purchase's credits that are still unspent: (reversed, shortfall).

    The balance never goes below zero: what was already spent (or is reserved by a running job) stays spent and
    is returned as the shortfall. Each attempt is a conditional update on the balance it read, so a job reserving
    at the same moment makes us read again instead of overdrawing."""
    account = _account(purchase)
    c = account.table.c
    while True:
        current = (await session.execute(sa.select(c.credits).where(c.id == account.id))).scalar_one_or_none()
        if current is None:
            raise LookupError(f"{account.kind} {account.id} not found")
        take = min(int(current), purchase.credits)
        result = await session.execute(
            sa.update(account.table)
            .where(c.id == account.id, c.credits >= take)
            .values(
                credits=c.credits - take,
                granted_total=sa.case((c.granted_total >= take, c.granted_total - take), else_=0),
            )
            .returning(c.credits)
        )
        if result.scalar_one_or_none() is not None:
            break
    session.add(account.ledger(-take, LedgerReason.purchase_reversal, purchase_id=purchase.id, payment_id=payment_id))
    await session.flush()
    metrics.credit_operation("purchase_reversal", account.kind, take)
    return take, purchase.credits - take
