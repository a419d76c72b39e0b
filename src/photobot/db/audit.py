"""Audit of the credit and job invariants, for tests, the fault suite and operators.

Returns a list of human-readable violations (empty when everything holds):
- for every event and user: balance == sum(ledger.delta) and balance >= 0;
- every job has exactly one `reserve`; a final job has exactly one of `settle` (completed) or
  `release` (failed); a job in flight has neither;
- a completed job has a result key; no job/channel pair was notified twice (unique index, checked anyway);
- purchases: an `approved` purchase has exactly one `purchase` ledger row (its credits, its payment id) and no
  reversal; a refunded or charged-back purchase that was granted has one `purchase_reversal` too, and
  reversed + shortfall == credits; any other status has no purchase rows. So for every account:
  balance == grants + purchases - reversals + job deltas (each a ledger row), and it is never negative.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.db import Database
from photobot.db.models import CreditLedger, Event, Job, JobState, Notification, Purchase, PurchaseStatus, User


async def audit(db: Database) -> list[str]:
    problems: list[str] = []
    async with db.session() as session:
        for model, column in ((Event, col(CreditLedger.event_id)), (User, col(CreditLedger.user_id))):
            sums = dict(
                (
                    await session.execute(
                        sa.select(column, sa.func.coalesce(sa.func.sum(col(CreditLedger.delta)), 0))
                        .where(column.is_not(None))
                        .group_by(column)
                    )
                ).all()
            )
            for account in (await session.execute(sa.select(model))).scalars():
                expected = sums.get(account.id, 0)
                if account.credits != expected:
                    problems.append(
                        f"{model.__tablename__} {account.id}: balance {account.credits} != ledger {expected}"
                    )
                if account.credits < 0:
                    problems.append(f"{model.__tablename__} {account.id}: negative balance")

        reasons = (
            await session.execute(
                sa.select(col(CreditLedger.job_id), col(CreditLedger.reason), sa.func.count())
                .where(col(CreditLedger.job_id).is_not(None))
                .group_by(col(CreditLedger.job_id), col(CreditLedger.reason))
            )
        ).all()
        by_job: dict[str, dict[str, int]] = {}
        for job_id, reason, count in reasons:
            by_job.setdefault(job_id, {})[reason] = count
        jobs = (await session.execute(sa.select(col(Job.id), col(Job.state), col(Job.result_key), col(Job.cost)))).all()
        for job_id, state, result_key, cost in jobs:
            rows = by_job.get(job_id, {})
            if cost > 0 and rows.get("reserve", 0) != 1:
                problems.append(f"job {job_id}: {rows.get('reserve', 0)} reserve rows")
            settle, release = rows.get("settle", 0), rows.get("release", 0)
            if state == JobState.completed and (settle, release) != (1, 0) and cost > 0:
                problems.append(f"job {job_id}: completed with settle={settle} release={release}")
            if state == JobState.failed and (settle, release) != (0, 1) and cost > 0:
                problems.append(f"job {job_id}: failed with settle={settle} release={release}")
            if state not in (JobState.completed, JobState.failed) and settle + release:
                problems.append(f"job {job_id}: {state} but reservation closed")
            if state == JobState.completed and not result_key:
                problems.append(f"job {job_id}: completed without a result")

        dupes = (
            await session.execute(
                sa.select(col(Notification.job_id), col(Notification.channel), sa.func.count())
                .group_by(col(Notification.job_id), col(Notification.channel))
                .having(sa.func.count() > 1)
            )
        ).all()
        problems.extend(f"job {j}: channel {c} has {n} notification rows" for j, c, n in dupes)
        problems.extend(await _audit_purchases(session))
    return problems


async def _audit_purchases(session: AsyncSession) -> list[str]:
    problems: list[str] = []
    rows = (
        await session.execute(
            sa.select(
                col(CreditLedger.purchase_id),
                col(CreditLedger.reason),
                col(CreditLedger.delta),
                col(CreditLedger.payment_id),
            ).where(col(CreditLedger.purchase_id).is_not(None))
        )
    ).all()
    by_purchase: dict[str, list[tuple[str, int, str | None]]] = {}
    for purchase_id, reason, delta, payment_id in rows:
        by_purchase.setdefault(purchase_id, []).append((reason, delta, payment_id))
    granted_states = {PurchaseStatus.approved.value, PurchaseStatus.refunded.value, PurchaseStatus.charged_back.value}
    for purchase in (await session.execute(sa.select(Purchase))).scalars():
        entries = by_purchase.get(purchase.id, [])
        grants = [e for e in entries if e[0] == "purchase"]
        reversals = [e for e in entries if e[0] == "purchase_reversal"]
        name = f"purchase {purchase.id}"
        if purchase.status not in granted_states and entries:
            problems.append(f"{name}: {purchase.status} but has {len(entries)} ledger rows")
            continue
        if purchase.status == PurchaseStatus.approved.value and (len(grants), len(reversals)) != (1, 0):
            problems.append(f"{name}: approved with {len(grants)} purchase and {len(reversals)} reversal rows")
        if purchase.status in (PurchaseStatus.refunded.value, PurchaseStatus.charged_back.value):
            if len(grants) > 1 or len(reversals) != len(grants):
                problems.append(f"{name}: {purchase.status} with {len(grants)} grants, {len(reversals)} reversals")
            if reversals and -reversals[0][1] + purchase.shortfall != purchase.credits:
                problems.append(f"{name}: reversed {-reversals[0][1]} + shortfall {purchase.shortfall} != credits")
            if reversals and -reversals[0][1] != purchase.reversed_credits:
                problems.append(f"{name}: reversed_credits {purchase.reversed_credits} != ledger")
        for _reason, delta, payment_id in grants:
            if delta != purchase.credits or payment_id != purchase.payment_id:
                problems.append(f"{name}: purchase row {delta} for payment {payment_id} does not match")
    return problems
