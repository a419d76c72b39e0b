"""Callbacks that race the engine: before the taskId is recorded, after the deadline, for unknown tasks/jobs."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import Event, Job
from photobot.providers.simulator.config import SimConfig
from tests.support.stack import Stack, StackFactory, fast_sim


class HoldCreateTask:
    """ASGI middleware around the simulator: createTask answers only when `release` is set.

    The task is created (and its callback scheduled) before the answer leaves, so the provider's callback
    reaches us while our createTask call is still waiting: the job is `submitting`, its taskId not recorded.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.release = asyncio.Event()
        self.task_ids: list[str] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/v1/jobs/createTask":
            await self.app(scope, receive, send)
            return
        held: list[dict] = []

        async def hold(message: dict) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        data = json.loads(body).get("data") or {}
        if data.get("taskId"):
            self.task_ids.append(data["taskId"])
        await self.release.wait()
        for message in held:
            await send(message)


@asynccontextmanager
async def _released(holder: dict[str, HoldCreateTask]) -> AsyncIterator[None]:
    try:
        yield
    finally:  # never leave a request hanging into the server's shutdown
        holder["hold"].release.set()


async def _held_engine(stack: StackFactory, db: Database, config: SimConfig, **overrides: Any):  # type: ignore[no-untyped-def]
    holder: dict[str, HoldCreateTask] = {}

    def wrap(sim: Any) -> None:
        holder["hold"] = HoldCreateTask(sim.app)
        sim.app = holder["hold"]

    return stack(db, config, sim_setup=wrap, **overrides), holder


async def test_callback_before_task_id_recorded(database: Database, stack: StackFactory) -> None:
    # a long poll interval: finishing must start when the submit step lets go of the job, not at the next poll
    ctx, holder = await _held_engine(stack, database, fast_sim(callback_delay_s=0.0), poll_interval_s=10.0)
    async with ctx as env, _released(holder):
        hold = holder["hold"]
        job_id = await env.submit()
        # the callback arrives and is accepted while createTask has not answered yet
        job = await env.wait_state(job_id, ("finishing",))
        assert job.provider_task_id == hold.task_ids[0]
        assert job.submitted_at is None and job.callback_at is not None
        while env.sim.stats.callbacks_sent < 1:
            await asyncio.sleep(0.01)
        assert env.sim.stats.callbacks_failed == 0  # the provider got its 200
        hold.release.set()
        released = time.monotonic()
        await env.wait_for(job_id, "completed")
        assert time.monotonic() - released < 6.0
        job = await env.job(job_id)
        assert job.provider_task_id == hold.task_ids[0]
        assert job.submitted_at is not None and job.provider_key_id is not None  # bookkeeping kept
        assert await env.ledger(job_id) == ["reserve", "settle"]


async def test_failure_callback_before_task_id_recorded(database: Database, stack: StackFactory) -> None:
    ctx, holder = await _held_engine(stack, database, fast_sim(callback_delay_s=0.0, failure_rate=1.0))
    async with ctx as env, _released(holder):
        job_id = await env.submit()
        job = await env.wait_state(job_id, ("failed",))
        assert job.error_code == "provider_generation_failed"
        holder["hold"].release.set()
        view = await env.wait_for(job_id, "failed")
        assert view["error"]["code"] == "provider_generation_failed"
        await asyncio.sleep(0.5)  # the late createTask answer must not revive the job
        job = await env.job(job_id)
        assert job.state == "failed" and job.provider_task_id == holder["hold"].task_ids[0]
        assert await env.ledger(job_id) == ["reserve", "release"]


async def _waiting_job(env: Stack) -> Job:
    """A job whose task succeeded at the simulator but whose callback was dropped."""
    job_id = await env.submit()
    job = await env.wait_state(job_id, ("waiting",))
    assert job.provider_task_id
    while env.sim.state.tasks[job.provider_task_id]["state"] != "success":
        await asyncio.sleep(0.02)
    return job


async def test_callback_after_the_deadline(database: Database, stack: StackFactory) -> None:
    async with stack(database, fast_sim(drop_rate=1.0)) as env:
        job = await _waiting_job(env)
        token = env.callback_url_of(job.provider_task_id or "").split("token=", 1)[1]
        past = job.created_at.replace(year=job.created_at.year - 1)
        await env.set_job(job.id, deadline_at=past, next_attempt_at=past)
        env.app.state.runtime.bus.wake_dispatchers()
        view = await env.wait_for(job.id, "failed")
        assert view["error"]["code"] == "timeout"
        before = await env.snapshot(job.id)
        async with env.db.session() as session:
            balance = (await session.get(Event, env.event_id)).credits  # type: ignore[union-attr]
        answer = await env.post_callback(env.callback_body(job.provider_task_id or ""), token=token)
        assert answer.status_code == 200 and answer.json() == {"code": 200, "msg": "success"}
        await asyncio.sleep(0.3)
        after = await env.snapshot(job.id)
        assert after[:2] == before[:2]  # job row and ledger untouched: the credit stays released
        assert after[3] == before[3]
        assert await env.ledger(job.id) == ["reserve", "release"]
        async with env.db.session() as session:
            assert (await session.get(Event, env.event_id)).credits == balance  # type: ignore[union-attr]


async def test_callback_for_unknown_job_or_task(database: Database, stack: StackFactory) -> None:
    async with stack(database, fast_sim(drop_rate=1.0)) as env:
        job = await _waiting_job(env)
        before = await env.snapshot(job.id)
        # a valid token for a job id that does not exist
        ghost = uuid.uuid4().hex
        answer = await env.post_callback(env.callback_body(job.provider_task_id or ""), token=env.token(ghost))
        assert answer.status_code == 200
        # this job's valid token, a task no job of ours knows (say, from an earlier attempt)
        stray = env.callback_body(uuid.uuid4().hex, result_url=f"{env.sim.url}/files/stray.png")
        answer = await env.post_callback(stray, token=env.token(job.id))
        assert answer.status_code == 200
        assert await env.snapshot(job.id) == before
        async with env.db.session() as session:
            count = (await session.execute(sa.select(sa.func.count()).select_from(Job))).scalar_one()
        assert count == 1
        # the real callback still works afterwards
        answer = await env.post_callback(env.callback_body(job.provider_task_id or ""), token=env.token(job.id))
        assert answer.status_code == 200
        await env.wait_for(job.id, "completed")


async def test_callback_racing_the_create_answer(database: Database, stack: StackFactory) -> None:
    """Callbacks sent with no delay land around the createTask answer: each job still completes once."""
    async with stack(database, fast_sim(callback_delay_s=0.0)) as env:
        ids = [await env.submit() for _ in range(4)]
        for job_id in ids:
            await env.wait_for(job_id, "completed")
            assert await env.ledger(job_id) == ["reserve", "settle"]
