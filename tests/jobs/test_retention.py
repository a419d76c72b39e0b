"""Retention: inputs go after the input TTL (privacy), results and thumbnails after the result TTL (then 410)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from photobot.db import Database
from photobot.db.models import JobState, utcnow
from photobot.jobs.retention import purge_once, run_retention
from photobot.pages.thumbs import ensure_thumbnail
from photobot.settings import Settings
from photobot.storage.keys import thumb_key
from tests.support.stack import Stack, open_app


async def test_inputs_then_results_are_deleted_and_pages_answer_410(pages: Stack) -> None:
    storage = pages.runtime.storage
    now = utcnow()
    hours = pages.settings.input_ttl_hours
    days = pages.settings.result_ttl_days
    yesterday = now - timedelta(hours=hours + 1)
    fresh = await pages.add_job(JobState.completed)
    day_old = await pages.add_job(JobState.completed, created_at=yesterday, completed_at=yesterday)
    day_old_failure = await pages.add_job(JobState.failed, created_at=yesterday, completed_at=yesterday)
    in_flight = await pages.add_job(JobState.waiting, created_at=yesterday + timedelta(minutes=1))
    month_old = now - timedelta(days=days, hours=1)
    expired = await pages.add_job(JobState.completed, created_at=month_old, completed_at=month_old)
    await ensure_thumbnail(storage, expired, pages.settings.var_dir / "tmp")
    assert await storage.exists(thumb_key(expired.id))

    report = await purge_once(pages.runtime)
    assert report.results_purged == 1
    # inputs: gone for finished jobs past the input TTL, kept for fresh and in-flight ones
    assert await storage.exists(fresh.input_key)
    assert not await storage.exists(day_old.input_key)
    assert not await storage.exists(day_old_failure.input_key)
    assert await storage.exists(in_flight.input_key)
    # the result of a day-old job stays (its page too); the month-old one is gone with its thumbnail
    assert await storage.exists(day_old.result_key or "")
    assert (await pages.client.get(f"/p/{day_old.public_id}")).status_code == 200
    assert not await storage.exists(expired.result_key or "")
    assert not await storage.exists(thumb_key(expired.id))
    assert not await storage.exists(expired.input_key)
    assert (await pages.reload(expired)).purged_at is not None
    assert (await pages.reload(day_old)).purged_at is None
    page = await pages.client.get(f"/p/{expired.public_id}")
    assert page.status_code == 410 and "expired" in page.text

    # a second pass changes nothing; once the in-flight job is final, its input goes too
    again = await purge_once(pages.runtime)
    assert again.results_purged == 0
    async with pages.db.session() as session:
        job = await session.get(type(in_flight), in_flight.id)
        assert job is not None
        job.state, job.completed_at, job.cost = JobState.failed, utcnow(), 0
    await purge_once(pages.runtime)
    assert not await storage.exists(in_flight.input_key)
    assert await storage.exists(fresh.input_key)

    # after the result TTL everything of the day-old job goes as well
    later = await purge_once(pages.runtime, now=now + timedelta(days=days))
    assert later.results_purged >= 2
    assert not await storage.exists(day_old.result_key or "")
    assert (await pages.client.get(f"/p/{day_old.public_id}")).status_code == 410


async def test_the_periodic_task_runs_a_pass_and_stops(shared_pages: Stack) -> None:
    env = shared_pages
    old = utcnow() - timedelta(days=env.settings.result_ttl_days + 1)
    job = await env.add_job(JobState.completed, created_at=old, completed_at=old)
    stop = asyncio.Event()
    task = asyncio.create_task(run_retention(env.runtime, stop, interval_s=0.05))
    async with asyncio.timeout(5):
        while (await env.reload(job)).purged_at is None:
            await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert not await env.runtime.storage.exists(job.result_key or "")


async def test_retention_and_thumbnails_on_s3(
    sqlite_database: Database, make_settings: Callable[..., Settings], s3_storage_url: str
) -> None:
    async with open_app(sqlite_database, make_settings, storage_url=s3_storage_url) as env:
        storage = env.runtime.storage
        old = utcnow() - timedelta(days=env.settings.result_ttl_days + 1)
        yesterday = utcnow() - timedelta(hours=env.settings.input_ttl_hours + 1)
        expired = await env.add_job(JobState.completed, created_at=old, completed_at=old)
        day_old = await env.add_job(JobState.completed, created_at=yesterday, completed_at=yesterday)
        await ensure_thumbnail(storage, expired, env.settings.var_dir / "tmp")
        page = await env.client.get(f"/p/{day_old.public_id}.json")
        assert (await env.client.get(page.json()["result_url"])).status_code == 200  # presigned S3 link
        await purge_once(env.runtime)
        assert not await storage.exists(expired.result_key or "")
        assert not await storage.exists(thumb_key(expired.id))
        assert not await storage.exists(day_old.input_key) and await storage.exists(day_old.result_key or "")
        assert await storage.exists("retention/inputs.cursor")
        assert (await env.client.get(f"/p/{expired.public_id}")).status_code == 410
        assert (await purge_once(env.runtime)).results_purged == 0


async def test_an_events_own_retention_days_override_the_default(pages: Stack) -> None:
    storage = pages.runtime.storage
    short = await pages.new_event("Short", retention_days=3)
    long = await pages.new_event("Long", retention_days=60)
    four_days = utcnow() - timedelta(days=4)
    forty_days = utcnow() - timedelta(days=40)
    gone_early = await pages.add_job(JobState.completed, event_id=short, created_at=four_days, completed_at=four_days)
    kept_longer = await pages.add_job(JobState.completed, event_id=long, created_at=forty_days, completed_at=forty_days)
    default_fresh = await pages.add_job(JobState.completed, created_at=four_days, completed_at=four_days)
    default_old = await pages.add_job(JobState.completed, created_at=forty_days, completed_at=forty_days)

    report = await purge_once(pages.runtime)
    assert report.results_purged == 2
    assert (await pages.reload(gone_early)).purged_at is not None  # 3 days for this event
    assert not await storage.exists(gone_early.result_key or "")
    assert (await pages.reload(default_old)).purged_at is not None  # the default 30 days
    assert (await pages.reload(kept_longer)).purged_at is None  # 60 days for this one
    assert await storage.exists(kept_longer.result_key or "")
    assert (await pages.client.get(f"/p/{kept_longer.public_id}")).status_code == 200
    assert (await pages.reload(default_fresh)).purged_at is None
