"""Reading one job where clients poll: the kiosk's `GET /v1/jobs/{id}`, the guest page and its live stream.

These reads run on every poll and on every state change a live page hears of, so they cost one statement and no
transaction: on PostgreSQL straight on the pooled driver connection (`Database.fetchrow`, no ORM session: its
BEGIN, COMMIT and identity map cost more than the read), and the guest page's job comes with its event in the
same statement. SQLite reads through a session as everything else there does.
"""

from __future__ import annotations

import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import Event, Job, from_row, labelled_columns, table_of

_JOBS, _EVENTS = table_of(Job), table_of(Event)
_EVENT_PREFIX = "event__"

_BY_ID = sa.select(_JOBS).where(_JOBS.c.id == sa.bindparam("job_id", None, type_=sa.String()))
_BY_PUBLIC_ID = (
    sa.select(_JOBS, *labelled_columns(Event, _EVENT_PREFIX))
    .select_from(_JOBS.outerjoin(_EVENTS, _EVENTS.c.id == _JOBS.c.event_id))
    .where(_JOBS.c.public_id == sa.bindparam("public_id", None, type_=sa.String()))
)


async def job_by_id(db: Database, job_id: str) -> Job | None:
    """The job `job_id`, or None."""
    if db.is_postgres:
        row = await db.fetchrow(_BY_ID, {"job_id": job_id})
        return None if row is None else from_row(Job, row)
    async with db.session() as session:
        return await session.get(Job, job_id)


async def job_with_event(db: Database, public_id: str) -> tuple[Job, Event | None] | None:
    """The job whose public id (the guest page's address) is `public_id`, and its event (None for an app user's
    job); None when there is no such job."""
    if db.is_postgres:
        row = await db.fetchrow(_BY_PUBLIC_ID, {"public_id": public_id})
        if row is None:
            return None
        job = from_row(Job, row)
        return job, from_row(Event, row, _EVENT_PREFIX) if job.event_id is not None else None
    async with db.session() as session:
        found = (await session.execute(sa.select(Job).where(_JOBS.c.public_id == public_id))).scalar_one_or_none()
        if found is None:
            return None
        return found, await session.get(Event, found.event_id) if found.event_id is not None else None
