"""A step that raises an unexpected error backs off and, after `step_crash_limit` crashes, fails the job with
`internal_error` and releases its credit: never the hot loop of the adversarial review (675 crashes in 30 s)."""

from __future__ import annotations

import asyncio

from photobot.db import Database
from photobot.db.models import JobState, utcnow
from tests.support.stack import StackFactory


async def test_a_crashing_step_backs_off_then_fails_with_internal_error(
    database: Database, stack: StackFactory
) -> None:
    async with stack(database, step_crash_limit=4, step_crash_backoff_s=0.1) as env:
        # A job whose input key storage refuses (as a storage outage or a bug would): its submit step raises, every
        # time. (A merely missing photo is not a crash: the provider refuses the input and the job fails with that.)
        crashes_before = (await env.scrape()).get_value("photobot_step_crashes_total")
        job_id = (await env.add_job(JobState.pending, store=False)).id
        await env.set_job(job_id, input_key="../outside/photo.jpg", next_attempt_at=utcnow())

        view = await env.wait_for(job_id, "failed", timeout=30)
        assert view["error"]["code"] == "internal_error"
        failed = await env.job(job_id)
        assert failed.crashes == 3  # three backed-off retries, the fourth crash fails it
        assert failed.attempts <= 5  # one submit attempt per crash, not hundreds
        assert await env.ledger(job_id) == []  # add_job's jobs cost 0; outcomes.fail releases any reserved credit
        await asyncio.sleep(0.3)
        crashes = (await env.scrape()).get_value("photobot_step_crashes_total") - crashes_before
        assert crashes == 4
