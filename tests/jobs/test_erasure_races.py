"""Erasing a guest while a worker is finishing their photo: the worker's result, stored after the erasure, is
deleted by the worker itself (the job failed meanwhile), so forget leaves no file behind — on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from photobot.db import Database
from tests.support.api import stored_keys
from tests.support.stack import StackFactory, fast_sim


class HoldResults:
    """ASGI middleware around the simulator: result downloads (`/files/results/…`) wait for `release`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/files/results/"):
            self.started.set()
            await self.release.wait()
        await self.app(scope, receive, send)


async def test_a_result_stored_after_forget_is_deleted_by_the_worker(database: Database, stack: StackFactory) -> None:
    holder: dict[str, HoldResults] = {}

    def wrap(sim: Any) -> None:
        holder["hold"] = HoldResults(sim.app)
        sim.app = holder["hold"]

    async with stack(database, fast_sim(), sim_setup=wrap) as env:
        hold = holder["hold"]
        try:
            job_id = await env.submit(email="ana@example.com")
            await env.wait_state(job_id, ("finishing",))
            await asyncio.wait_for(hold.started.wait(), 15)  # the worker is downloading the result
            forgot = await env.client.post(
                f"/v1/admin/events/{env.event_id}/forget", json={"email": "ana@example.com"}, headers=env.admin
            )
            assert forgot.status_code == 200 and forgot.json()["jobs_failed"] == 1
        finally:
            hold.release.set()
        await asyncio.sleep(2.0)  # the worker downloads, stores, loses the race to `completed`, deletes what it stored
        assert {k for k in await asyncio.to_thread(stored_keys, env) if job_id in k} == set()
        job = await env.job(job_id)
        assert (job.state, job.error_code, job.email) == ("failed", "guest_forgotten", None)
        assert await env.ledger(job_id) == ["reserve", "release"]
