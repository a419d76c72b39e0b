"""Redis stopped during a run: intake and callbacks still answer, every job still completes.

A private `redis-server` (never the machine's shared one) serves as PHOTOBOT_REDIS_URL; it is killed in the
middle of the run. The bus falls back to local delivery plus polling, the rate limiters to memory, the
taskId cache is skipped: nothing is lost.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from photobot.db import Database
from tests.support.servers import free_port
from tests.support.stack import StackFactory, fast_sim


@pytest.fixture
def private_redis() -> Iterator[tuple[str, subprocess.Popen]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def _ping(url: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        client = aioredis.Redis.from_url(url)
        try:
            await client.ping()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
        finally:
            await client.aclose()


async def test_redis_killed_mid_run(
    database: Database, stack: StackFactory, private_redis: tuple[str, subprocess.Popen]
) -> None:
    url, proc = private_redis
    await _ping(url)
    async with stack(database, fast_sim(callback_delay_s=0.3), redis_url=url, reconcile_after_s=2) as env:
        first = [await env.submit() for _ in range(2)]
        for job_id in first:
            await env.wait_for(job_id, "completed")
        client = aioredis.Redis.from_url(url)
        try:
            assert await client.dbsize() > 0  # Redis was in use (rate-limit counters)
        finally:
            await client.aclose()

        in_flight = [await env.submit() for _ in range(2)]  # their callbacks arrive after Redis is gone
        proc.kill()
        proc.wait(10)
        after = [await env.submit() for _ in range(3)]  # intake answers without Redis
        for job_id in in_flight + after:
            await env.wait_for(job_id, "completed", timeout=30)
            assert await env.ledger(job_id) == ["reserve", "settle"]
        callbacks = {job_id for _, _, job_id in await env.webhook_events()}
        assert set(after) <= callbacks  # the callbacks themselves were accepted, not only reconciled
        assert (await env.client.get("/healthz")).status_code == 200
