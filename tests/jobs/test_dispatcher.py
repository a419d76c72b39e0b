"""The dispatcher's claim: one statement that leases due jobs and hands back their rows.

Two dispatchers claiming the same due jobs at the same moment must lease each job to exactly one of them (on
PostgreSQL through `FOR UPDATE SKIP LOCKED` plus the `due` re-check, on SQLite through `BEGIN IMMEDIATE`), and the
rows the claim returns are what the step runs on: already carrying this worker's lease.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from photobot.db import Database
from photobot.db.models import Job, JobState, utcnow
from photobot.jobs.dispatcher import Dispatcher
from tests.support.stack import StackFactory


async def test_racing_claims_lease_each_due_job_once_and_return_the_leased_rows(
    database: Database, stack: StackFactory
) -> None:
    async with stack(database, simulator=False, run_dispatcher=False) as env:
        due = {(await env.add_job(JobState.pending, store=False)).id for _ in range(12)}
        for job_id in due:
            await env.set_job(job_id, next_attempt_at=utcnow())
        later = await env.add_job(JobState.waiting, store=False)  # in flight, but not due yet
        await env.set_job(later.id, next_attempt_at=utcnow() + timedelta(days=1))
        providers = env.app.state.providers
        first, second = Dispatcher(env.runtime, providers), Dispatcher(env.runtime, providers)

        got = await asyncio.gather(first.claim(8), second.claim(8), first.claim(8))

        claimed = [job for batch in got for job in batch]
        assert sorted(job.id for job in claimed) == sorted(due)  # every due job once, nothing else
        for dispatcher, batch in zip((first, second, first), got, strict=True):
            assert all(isinstance(job, Job) and job.lease_owner == dispatcher.worker_id for job in batch)
            assert all(job.lease_until is not None and job.lease_until > utcnow() for job in batch)
        for job in claimed:  # the database agrees with the rows handed back
            assert (await env.job(job.id)).lease_owner == job.lease_owner
        assert await first.claim(8) == [] and await second.claim(8) == []  # leased jobs are not due
        assert (await env.job(later.id)).lease_owner is None
