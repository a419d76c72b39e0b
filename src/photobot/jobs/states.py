"""Conditional state transitions: the one way a job's state changes.

`transition(session, job_id, from_states, to_state, **values)` runs
`UPDATE jobs SET state = :to, … WHERE id = :id AND state IN (:from…)` and reports whether it won. A loser
(the job was already moved by a duplicate or a competing worker) changes nothing. Each win appends a row
to `job_transitions` for operators.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot import metrics
from photobot.db import execute_dml
from photobot.db.models import Job, JobState, JobTransition, utcnow

IN_FLIGHT = (JobState.pending, JobState.submitting, JobState.waiting, JobState.finishing)


async def transition(
    session: AsyncSession,
    job_id: str,
    from_states: Iterable[JobState],
    to_state: JobState,
    *,
    note: str | None = None,
    expect_lease: str | None = None,
    **values: Any,
) -> str | None:
    """Move the job if it is in one of `from_states`; returns the previous state, or None if it was not."""
    from_list = [JobState(s).value for s in from_states]
    now = utcnow()
    query = (
        sa.update(Job)
        .where(col(Job.id) == job_id, col(Job.state).in_(from_list))
        .values(state=to_state.value, state_changed_at=now, updated_at=now, **values)
    )
    if expect_lease is not None:
        query = query.where(col(Job.lease_owner) == expect_lease)
    # RETURNING gives new values only: read the old state (and since when) first; the guarded UPDATE decides.
    row = (
        await session.execute(
            sa.select(col(Job.state), col(Job.state_changed_at)).where(
                col(Job.id) == job_id, col(Job.state).in_(from_list)
            )
        )
    ).first()
    if row is None:
        return None
    previous, entered = str(row[0]), row[1]
    if await execute_dml(session, query) != 1:
        return None
    metrics.job_transition(previous, to_state.value, entered, now)
    if previous != to_state.value or note:
        session.add(JobTransition(job_id=job_id, from_state=previous, to_state=to_state.value, note=note, at=now))
    return previous


async def update_in_state(
    session: AsyncSession, job_id: str, states: Iterable[JobState], *, expect_lease: str | None = None, **values: Any
) -> bool:
    """Change columns of a job only while it is in one of `states` (no state change)."""
    query = (
        sa.update(Job)
        .where(col(Job.id) == job_id, col(Job.state).in_([JobState(s).value for s in states]))
        .values(updated_at=utcnow(), **values)
    )
    if expect_lease is not None:
        query = query.where(col(Job.lease_owner) == expect_lease)
    return await execute_dml(session, query) == 1
