"""Lost callbacks (the reconciler completes every job) and provider failures (failed, credit released)."""

from __future__ import annotations

import asyncio

from photobot.db import Database
from photobot.db.models import Event
from tests.support.stack import StackFactory, fast_sim


async def test_lost_callbacks_are_reconciled(database: Database, stack: StackFactory) -> None:
    async with stack(database, fast_sim(drop_rate=1.0), reconcile_after_s=1) as env:
        ids = await asyncio.gather(*(env.submit() for _ in range(4)))
        for job_id in ids:
            await env.wait_for(job_id, "completed", timeout=30)
            assert await env.ledger(job_id) == ["reserve", "settle"]
            job = await env.job(job_id)
            assert job.callback_at is None and job.result_key
        assert env.sim.stats.callbacks_dropped == 4 and env.sim.stats.callbacks_sent == 0
        assert await env.webhook_events() == []


async def test_provider_failure_fails_and_releases(database: Database, stack: StackFactory) -> None:
    async with stack(database, fast_sim(failure_rate=1.0), credits=5) as env:
        ids = [await env.submit() for _ in range(2)]
        for job_id in ids:
            view = await env.wait_for(job_id, "failed")
            assert view["error"]["code"] == "provider_generation_failed"
            assert view["result_url"] is None
            assert await env.ledger(job_id) == ["reserve", "release"]
            job = await env.job(job_id)
            assert job.result_key is None and job.error_message
            assert [o for _, o, _ in await env.webhook_events(job_id)] == ["fail"]
        async with env.db.session() as session:
            event = await session.get(Event, env.event_id)
        assert event is not None and event.credits == 5  # every reservation went back
        # The simulator counts a callback once our 200 is back; the job may be visible as failed just before.
        for _ in range(100):
            if env.sim.stats.callbacks_sent == 2:
                break
            await asyncio.sleep(0.02)
        assert env.sim.stats.callbacks_sent == 2 and env.sim.stats.callbacks_failed == 0


async def test_provider_in_maintenance_fails_the_job_at_its_deadline(
    sqlite_database: Database, stack: StackFactory
) -> None:
    """455 on every createTask: the submit step retries, but never past the job's deadline."""
    async with stack(sqlite_database, fast_sim(maintenance=True), job_timeout_s=10) as env:
        job_id = await env.submit()
        view = await env.wait_for(job_id, "failed", timeout=25)
        job = await env.job(job_id)
    # Expired at the deadline, or given up earlier when the next retry would land past it: never later.
    assert view["error"]["code"] in ("timeout", "provider_maintenance")
    assert job.completed_at is not None
    assert (job.completed_at - job.deadline_at).total_seconds() < 3.0
    assert env.sim.stats.rate_limited == 0 and env.sim.stats.tasks_created == 0
