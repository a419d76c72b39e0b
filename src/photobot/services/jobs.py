"""Reading jobs for operators (CLI `jobs list|show`, admin API)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.db.models import PROCESSING, Job, JobState, JobTransition, state_values
from photobot.services import Invalid, NotFound


async def list_jobs(
    session: AsyncSession,
    *,
    event_id: int | None = None,
    user_id: int | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Job]:
    query = sa.select(Job).order_by(col(Job.created_at).desc(), col(Job.id)).limit(min(limit, 1000)).offset(offset)
    if event_id is not None:
        query = query.where(col(Job.event_id) == event_id)
    if user_id is not None:
        query = query.where(col(Job.user_id) == user_id)
    if state is not None:
        if state == "processing":
            query = query.where(col(Job.state).in_(state_values(PROCESSING)))
        elif state in tuple(JobState):
            query = query.where(col(Job.state) == state)
        else:
            raise Invalid(f"unknown state {state!r}")
    if since is not None:
        query = query.where(col(Job.created_at) >= since)
    if until is not None:
        query = query.where(col(Job.created_at) < until)
    return list((await session.execute(query)).scalars())


async def get_job(session: AsyncSession, job_id: str) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


async def transitions(session: AsyncSession, job_id: str) -> list[JobTransition]:
    query = sa.select(JobTransition).where(col(JobTransition.job_id) == job_id).order_by(col(JobTransition.id))
    return list((await session.execute(query)).scalars())
