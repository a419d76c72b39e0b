"""Credits: a conditional balance update plus an append-only ledger row, always in one transaction.

- `grant`: add credits (CLI, admin API); ledger `grant` row, `granted_total` grows.
- `reserve`: at accept time; `UPDATE … SET credits = credits - cost WHERE id = ? AND credits >= cost`.
  Zero rows updated means no credit: nothing else happens and the caller answers 402.
- `settle`: the job completed; the reservation is spent (ledger row with delta 0).
- `release`: the job failed; the reservation goes back to the balance.
The unique index on `(job_id, reason)` makes a second settle or release fail loudly instead of counting twice;
callers only reach settle/release through a conditional job-state update, so that never happens in practice.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot import metrics
from photobot.db.models import CreditLedger, Event, Job, LedgerReason, User


class NoCredits(Exception):
    """The account cannot cover the cost."""


def _account(job_or_owner: Job | tuple[int | None, int | None]) -> tuple[type[Event] | type[User], int, dict]:
    event_id, user_id = (job_or_owner.event_id, job_or_owner.user_id) if isinstance(job_or_owner, Job) else job_or_owner
    if event_id is not None:
        return Event, event_id, {"event_id": event_id}
    assert user_id is not None
    return User, user_id, {"user_id": user_id}


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
    model, account_id, owner = _account((event_id, user_id))
    result = await session.execute(
        sa.update(model)
        .where(model.id == account_id)
        .values(credits=model.credits + amount, granted_total=model.granted_total + amount)
        .returning(model.credits)
    )
    balance = result.scalar_one_or_none()
    if balance is None:
        raise LookupError(f"{model.__tablename__[:-1]} {account_id} not found")
    session.add(CreditLedger(delta=amount, reason=LedgerReason.grant, note=note, **owner))
    metrics.credit_operation("grant", model.__tablename__[:-1], amount)
    return balance


async def reserve(session: AsyncSession, job: Job) -> int:
    """Take `job.cost` from the owner's balance for this job, or raise NoCredits; returns the new balance."""
    model, account_id, owner = _account(job)
    if job.cost == 0:
        return -1
    result = await session.execute(
        sa.update(model)
        .where(model.id == account_id, model.credits >= job.cost)
        .values(credits=model.credits - job.cost)
        .returning(model.credits)
    )
    balance = result.scalar_one_or_none()
    if balance is None:
        metrics.credit_operation("reserve_refused", model.__tablename__[:-1])
        raise NoCredits()
    session.add(CreditLedger(delta=-job.cost, reason=LedgerReason.reserve, job_id=job.id, **owner))
    metrics.credit_operation("reserve", model.__tablename__[:-1], job.cost)
    return balance


async def settle(session: AsyncSession, job: Job) -> None:
    """Mark the job's reservation as spent. Call only after moving the job to `completed`."""
    if job.cost == 0:
        return
    _, _, owner = _account(job)
    session.add(CreditLedger(delta=0, reason=LedgerReason.settle, job_id=job.id, **owner))
    metrics.credit_operation("settle", "event" if job.event_id is not None else "user", job.cost)


async def release(session: AsyncSession, job: Job) -> None:
    """Give the job's reservation back. Call only after moving the job to `failed`."""
    if job.cost == 0:
        return
    model, account_id, owner = _account(job)
    await session.execute(sa.update(model).where(model.id == account_id).values(credits=model.credits + job.cost))
    session.add(CreditLedger(delta=job.cost, reason=LedgerReason.release, job_id=job.id, **owner))
    metrics.credit_operation("release", model.__tablename__[:-1], job.cost)
