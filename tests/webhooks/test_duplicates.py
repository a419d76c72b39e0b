"""Duplicate callbacks: whatever the number and timing, one completion, one settle, one set of notifications."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

from photobot.db import Database
from tests.support.smtp import SMTPServer
from tests.support.stack import Stack, StackFactory, fast_sim

EMAIL = "guest@example.com"


async def _assert_once(env: Stack, smtp: SMTPServer, job_id: str) -> None:
    job = await env.job(job_id)
    assert job.state == "completed"
    assert await env.ledger(job_id) == ["reserve", "settle"]
    assert [(t, o) for t, o, _ in await env.webhook_events(job_id)] == [(job.provider_task_id, "success")]
    rows = await env.notifications(job_id)
    assert [(r.channel, r.kind) for r in rows] == [("email", "ready")]
    deadline = time.monotonic() + 10
    while not smtp.messages and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # a second message would have arrived by now
    assert len(smtp.messages) == 1
    assert smtp.envelopes[0].rcpt_tos == [EMAIL]


async def test_simulator_sends_each_callback_ten_times(
    database: Database, stack: StackFactory, smtp_server: SMTPServer
) -> None:
    async with stack(database, fast_sim(duplicate_callbacks=10), smtp_url=smtp_server.url) as env:
        job_id = await env.submit(email=EMAIL)
        await env.wait_for(job_id, "completed")
        deadline = time.monotonic() + 10
        while env.sim.stats.callbacks_sent < 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert env.sim.stats.callbacks_sent == 10
        assert env.sim.stats.callbacks_failed == 0  # every duplicate got a 200
        await _assert_once(env, smtp_server, job_id)


async def test_ten_concurrent_identical_callbacks(
    database: Database, stack: StackFactory, smtp_server: SMTPServer
) -> None:
    # The simulator finishes the task but never calls back; we deliver its callback ten times at once.
    async with stack(database, fast_sim(drop_rate=1.0), smtp_url=smtp_server.url) as env:
        job_id = await env.submit(email=EMAIL)
        job = await env.wait_state(job_id, ("waiting",))
        task_id = job.provider_task_id
        assert task_id
        while env.sim.state.tasks[task_id]["state"] != "success":
            await asyncio.sleep(0.02)
        url = env.callback_url_of(task_id)
        assert url.startswith(f"{env.base_url}/webhooks/kie?token=")
        token = parse_qs(urlsplit(url).query)["token"][0]
        body = env.callback_body(task_id)
        answers = await asyncio.gather(*(env.post_callback(body, token=token) for _ in range(10)))
        assert [a.status_code for a in answers] == [200] * 10
        assert all(a.json() == {"code": 200, "msg": "success"} for a in answers)
        await env.wait_for(job_id, "completed")
        # and once more after completion: still 200, still nothing new
        late = await env.post_callback(body, token=token)
        assert late.status_code == 200
        await _assert_once(env, smtp_server, job_id)


async def test_twenty_concurrent_copies_across_two_processes(
    database: Database, stack: StackFactory, smtp_server: SMTPServer, redis_url: str
) -> None:
    """One callback delivered 20 times at once, spread over two web processes sharing the database and Redis (the
    per-job limit deferred in each): every copy answered 200, the job moves once, settles once, one message."""
    shared = {"callback_job_rate_limit": "60/minute", "redis_url": redis_url, "smtp_url": smtp_server.url}
    async with (
        stack(database, fast_sim(drop_rate=1.0), **shared) as env,
        stack(database, fast_sim(drop_rate=1.0), reuse=env, run_dispatcher=False, **shared) as other,
    ):
        job_id = await env.submit(email=EMAIL)
        job = await env.wait_state(job_id, ("waiting",))
        task_id = job.provider_task_id
        assert task_id
        while env.sim.state.tasks[task_id]["state"] != "success":
            await asyncio.sleep(0.02)
        token = parse_qs(urlsplit(env.callback_url_of(task_id)).query)["token"][0]
        body = env.callback_body(task_id)
        answers = await asyncio.gather(*((env if i % 2 else other).post_callback(body, token=token) for i in range(20)))
        assert [a.status_code for a in answers] == [200] * 20
        await env.wait_for(job_id, "completed")
        await _assert_once(env, smtp_server, job_id)
