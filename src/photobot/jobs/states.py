"""Conditional state transitions: the one way a job's state changes.

`transition(session, job_id, from_states, to_state, **values)` runs
`UPDATE jobs SET state = :to, … WHERE id = :id AND state IN (:from…)` and reports whether it won. A loser
(the job was already moved by a duplicate or a competing worker) changes nothing. Each win appends a row
to `job_transitions` for operators.

`transition_ctes` is the same move for PostgreSQL statements that do more in the same round trip (the settlement:
`outcomes.complete`): data-modifying CTEs with the same guard and the same history row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot import metrics
from photobot.db import execute_dml
from photobot.db.models import Job, JobState, JobTransition, UTCDateTime, table_of, utcnow

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


def transition_ctes(from_states: Iterable[JobState], to_state: JobState, **values: Any) -> tuple[sa.CTE, sa.CTE]:
    """The conditional move of job `:job_id` at `:now` as PostgreSQL CTEs: `moved` (the job's row after the move,
    plus `previous` and `entered`: the state it left and since when; empty when the job was not in `from_states`)
    and `logged` (its `job_transitions` row). The caller's statement selects from `moved` and adds `logged` with
    `add_cte`; both run in that statement, so the history row exists exactly when the move won.

    The old row is read `FOR UPDATE`: a competing move waits, then sees the state that move left (the guard is
    re-checked on the newest row), as the two-statement `transition` gets from its conditional UPDATE.
    """
    jobs = table_of(Job)
    now = sa.bindparam("now", None, type_=UTCDateTime())
    job_id = sa.bindparam("job_id", None, type_=sa.String())
    old = (
        sa.select(jobs.c.id, jobs.c.state.label("previous"), jobs.c.state_changed_at.label("entered"))
        .where(jobs.c.id == job_id, jobs.c.state.in_([JobState(s).value for s in from_states]))
        .with_for_update()
        .cte("old")
    )
    moved = (
        sa.update(jobs)
        .where(jobs.c.id == old.c.id)
        .values(state=to_state.value, state_changed_at=now, updated_at=now, **values)
        .returning(*jobs.c, old.c.previous, old.c.entered)
        .cte("moved")
    )
    history = table_of(JobTransition)
    logged = (
        sa.insert(history)
        .from_select(
            ["job_id", "from_state", "to_state", "at"],
            sa.select(moved.c.id, moved.c.previous, sa.literal(to_state.value), now),
        )
        .cte("logged")
    )
    return moved, logged
