"""Audit of the credit and job invariants, for tests, the fault suite and operators.

Returns a list of human-readable violations (empty when everything holds):
- for every event and user: balance == sum(ledger.delta) and balance >= 0;
- every job has exactly one `reserve`; a final job has exactly one of `settle` (completed) or
  `release` (failed); a job in flight has neither;
- a completed job has a result key; no job/channel pair was notified twice (unique index, checked anyway).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col

from photobot.db import Database
from photobot.db.models import CreditLedger, Event, Job, JobState, Notification, User


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
    return problems
