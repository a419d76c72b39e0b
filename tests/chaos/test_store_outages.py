"""Stores going away mid-run: Redis stopped and restarted, PostgreSQL restarted.

Both servers are our own (a redis-server and an initdb cluster on free ports): the machine's shared Redis and
PostgreSQL, which other test runs use, are never stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx

from photobot.db import Database
from photobot.db.migrate import upgrade
from tests.chaos.harness import OwnPostgres, OwnRedis, chaos_env, scale, sim_config
from tests.support.smtp import SMTPServer


async def test_redis_stopped_mid_run(
    pg_database: Database, tmp_path: Path, smtp_server: SMTPServer, own_redis: OwnRedis, chaos_full: bool
) -> None:
    outage_s, jobs = scale(chaos_full, 5, 60), scale(chaos_full, 3, 20)
    config = sim_config(callback_delay_s=0.5, callback_jitter_s=1.0)
    async with chaos_env(pg_database, tmp_path, config, smtp=smtp_server, redis_url=own_redis.url) as env:
        await env.submit(jobs)
        own_redis.stop()
        started = time.monotonic()
        statuses: Counter[int] = Counter()
        while time.monotonic() - started < outage_s:  # intake keeps working without Redis
            response = await env.post_job(len(env.submitted))
            statuses[response.status_code] += 1
            if response.status_code == 202:
                env.submitted.append(response.json()["id"])
            await asyncio.sleep(max(0.5, outage_s / jobs))
        own_redis.start()
        await env.submit(jobs)  # and after it
        env.notes.update(outage_s=outage_s, during_outage=dict(statuses))
        result = await env.audit_all("Redis stopped and restarted", timeout_s=120, expect="completed")
    assert set(statuses) == {202}, statuses
    assert result.completed == len(env.submitted)


async def test_postgres_restarted_mid_run(
    tmp_path: Path, smtp_server: SMTPServer, own_postgres: OwnPostgres, chaos_full: bool
) -> None:
    outage_s, jobs = scale(chaos_full, 4, 30), scale(chaos_full, 3, 20)
    await asyncio.to_thread(upgrade, own_postgres.url)
    db = Database(own_postgres.url)
    config = sim_config(callback_delay_s=0.5, callback_jitter_s=1.5)
    try:
        async with chaos_env(db, tmp_path, config, smtp=smtp_server, lease_s=5, reconcile_after_s=2) as env:
            await env.submit(jobs)
            await own_postgres.stop()
            started = time.monotonic()
            answers: Counter[str] = Counter()
            while time.monotonic() - started < outage_s:
                try:
                    response = await env.post_job(len(env.submitted))
                except httpx.TransportError as exc:  # the connection was dropped instead of answered
                    answers[f"connection dropped ({type(exc).__name__})"] += 1
                    await asyncio.sleep(0.5)
                    continue
                ctype = response.headers.get("content-type", "")
                code = response.json().get("code") if "json" in ctype else None
                answers[f"{response.status_code} {code} {ctype.split(';')[0]}"] += 1
                if response.status_code == 202:  # must not happen, but then it must not be lost either
                    env.submitted.append(response.json()["id"])
                ready = await env.client.get("/readyz")
                answers[f"readyz {ready.status_code}"] += 1
                await asyncio.sleep(0.5)
            await own_postgres.start()
            await env.submit(jobs)
            env.notes.update(outage_s=outage_s, during_outage=dict(answers))
            result = await env.audit_all("PostgreSQL restarted", timeout_s=120, expect="completed")
    finally:
        await db.close()
    intake = {k: v for k, v in answers.items() if not k.startswith("readyz")}
    assert set(intake) == {"503 database_unavailable application/problem+json"}, intake
    assert set(answers) - set(intake) == {"readyz 503"}
    assert result.completed == len(env.submitted)
