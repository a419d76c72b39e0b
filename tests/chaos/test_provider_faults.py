"""The simulator misbehaving: 429 storm, 455 maintenance, lost, duplicated and late callbacks.

Each scenario runs N jobs through the real service (web + dispatcher, PostgreSQL) and ends with the audit.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import WebhookEvent
from tests.chaos.harness import chaos_env, scale, sim_config
from tests.support.smtp import SMTPServer


async def test_429_storm(pg_database: Database, tmp_path: Path, smtp_server: SMTPServer, chaos_full: bool) -> None:
    jobs, storm = scale(chaos_full, 3, 30), scale(chaos_full, 2, 120)
    config = sim_config(burst_429=storm)
    async with chaos_env(pg_database, tmp_path, config, smtp=smtp_server, job_timeout_s=240) as env:
        await env.submit(jobs)
        result = await env.audit_all("simulator 429 storm", timeout_s=200, expect="completed")
        stats = await env.sim_stats()
        env.notes.update(rate_limited=stats["rate_limited"], create_calls=stats["create_calls_total"])
    assert stats["rate_limited"] >= min(storm, 1)
    assert result.completed == jobs


async def test_455_maintenance(
    pg_database: Database, tmp_path: Path, smtp_server: SMTPServer, chaos_full: bool
) -> None:
    jobs, outage_s = scale(chaos_full, 3, 30), scale(chaos_full, 2, 30)
    async with chaos_env(pg_database, tmp_path, sim_config(maintenance=True), smtp=smtp_server,
                         job_timeout_s=240) as env:  # fmt: skip
        await env.submit(jobs)
        await asyncio.sleep(outage_s)
        env.sim.config.maintenance = False
        env.notes["maintenance_s"] = outage_s
        result = await env.audit_all("simulator 455 maintenance", timeout_s=200, expect="completed")
        env.notes["create_calls"] = (await env.sim_stats())["create_calls_total"]
    assert result.completed == jobs


async def test_455_maintenance_past_deadline(pg_database: Database, tmp_path: Path, chaos_full: bool) -> None:
    """Maintenance that outlasts the deadline: every job fails and every credit comes back."""
    if not chaos_full:
        pytest.skip("full form only (--chaos-full): the short form covers deadlines with late callbacks")
    jobs = scale(chaos_full, 3, 20)
    async with chaos_env(pg_database, tmp_path, sim_config(maintenance=True), job_timeout_s=10) as env:
        await env.submit(jobs)
        result = await env.audit_all("455 maintenance past deadline", timeout_s=120)
    assert result.failed == jobs


async def test_all_callbacks_dropped(
    pg_database: Database, tmp_path: Path, smtp_server: SMTPServer, chaos_full: bool
) -> None:
    jobs = scale(chaos_full, 5, 50)
    async with chaos_env(pg_database, tmp_path, sim_config(drop_rate=1.0), smtp=smtp_server,
                         reconcile_after_s=1) as env:  # fmt: skip
        await env.submit(jobs)
        result = await env.audit_all("all callbacks dropped", timeout_s=90, expect="completed")
        stats = await env.sim_stats()
        env.notes.update(dropped=stats["callbacks_dropped"], record_calls=stats["record_calls"])
    assert stats["callbacks_sent"] == 0 and result.completed == jobs


async def test_every_callback_five_times(
    pg_database: Database, tmp_path: Path, smtp_server: SMTPServer, chaos_full: bool
) -> None:
    jobs = scale(chaos_full, 5, 50)
    async with chaos_env(pg_database, tmp_path, sim_config(duplicate_callbacks=5), smtp=smtp_server,
                         reconcile_after_s=60) as env:  # fmt: skip
        ids = await env.submit(jobs)
        result = await env.audit_all("every callback x5", timeout_s=90, expect="completed")
        deadline = time.monotonic() + 20
        while env.sim.stats.callbacks_sent < 5 * jobs and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        async with pg_database.session() as session:
            rows = (
                await session.execute(sa.select(WebhookEvent.job_id, sa.func.count()).group_by(WebhookEvent.job_id))
            ).all()
        env.notes.update(callbacks_sent=env.sim.stats.callbacks_sent, events_recorded=sum(n for _, n in rows))
    assert {job_id: n for job_id, n in rows} == dict.fromkeys(ids, 1)
    assert env.sim.stats.callbacks_failed == 0  # duplicates are answered 200 too
    assert result.completed == jobs


async def test_callbacks_after_the_deadline(pg_database: Database, tmp_path: Path, chaos_full: bool) -> None:
    """Callbacks later than the deadline: the jobs expire (credit back); the late callbacks change nothing."""
    jobs = scale(chaos_full, 3, 20)
    config = sim_config(callback_delay_s=12.0, callback_jitter_s=1.0)
    async with chaos_env(pg_database, tmp_path, config, job_timeout_s=10, reconcile_after_s=60) as env:
        await env.submit(jobs)
        first = await env.wait_final(30)
        deadline = time.monotonic() + 20
        while env.sim.stats.callbacks_sent < jobs and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        env.notes["late_callbacks"] = env.sim.stats.callbacks_sent
        result = await env.audit_all("callbacks after the deadline", timeout_s=5)
        second = await env.states()
    assert set(first.values()) == {"failed"} and first == second
    assert result.failed == jobs
