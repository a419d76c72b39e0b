"""Result URLs we will not fetch: a host outside the allowlist, or one that resolves to a private address.

The simulator's `result_host` points its result URLs at a small counting proxy of ours (in front of the
simulator's file host), so "nothing fetched" is checked where it happens: the proxy saw no result request.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from photobot.db import Database
from photobot.db.models import Job, utcnow
from photobot.providers.simulator.runner import start_server
from tests.support.stack import StackFactory, fast_sim


@asynccontextmanager
async def counting_proxy(host: str = "127.0.0.1") -> AsyncIterator[dict]:
    """A file host that forwards GET /files/... to `state["upstream"]` and counts requests by first segment;
    while `state["fail"]` is set, result files answer 503."""
    state: dict = {"upstream": None, "hits": Counter()}

    async def files(request: Request) -> Response:
        name = request.path_params["name"]
        state["hits"][name.split("/", 1)[0]] += 1
        if state.get("fail") and name.startswith("results/"):
            return Response(b"try again later", status_code=503)
        async with httpx.AsyncClient() as client:
            upstream = await client.get(f"{state['upstream']}/files/{name}")
        return Response(upstream.content, status_code=upstream.status_code,
                        media_type=upstream.headers.get("content-type"))  # fmt: skip

    server = await start_server(Starlette(routes=[Route("/files/{name:path}", files)]), host=host)
    state["url"] = server.url
    state["netloc"] = f"{host}:{server.port}"
    try:
        yield state
    finally:
        await server.stop()


@pytest.mark.parametrize("confirm", [True, False], ids=["confirm", "trust-callback"])
async def test_result_host_outside_allowlist(database: Database, stack: StackFactory, confirm: bool) -> None:
    async with counting_proxy() as proxy:
        sim = fast_sim(result_host=proxy["url"])
        async with stack(database, sim, kie_confirm_results=confirm) as env:
            proxy["upstream"] = env.sim.url
            assert proxy["netloc"] not in env.app.state.providers.get("kie").result_hosts
            job_id = await env.submit()
            view = await env.wait_for(job_id, "failed", timeout=30)
            assert view["error"]["code"] == "result_url_not_allowed"
            assert await env.ledger(job_id) == ["reserve", "release"]
            # the URL was taken from recordInfo (our key) once, then the job failed: asking again gives the
            # same URL, so there is no retry loop with backoff
            assert env.sim.stats.record_calls == 1
            assert proxy["hits"]["results"] == 0  # nothing fetched
            job = await env.job(job_id)
            assert job.result_key is None


async def test_result_host_on_a_private_address(database: Database, stack: StackFactory) -> None:
    # Allowed by name, but 127.0.0.2 is a private address: refused before connecting.
    async with counting_proxy("127.0.0.2") as proxy:
        sim = fast_sim(result_host=proxy["url"])
        async with stack(database, sim, allow_private_networks=False, kie_result_hosts=[proxy["netloc"]]) as env:
            proxy["upstream"] = env.sim.url
            job_id = await env.submit()
            view = await env.wait_for(job_id, "failed", timeout=30)
            assert view["error"]["code"] == "result_url_not_allowed"
            assert await env.ledger(job_id) == ["reserve", "release"]
            assert proxy["hits"]["uploads"] >= 1  # the simulator read our upload through it: it works
            assert proxy["hits"]["results"] == 0  # but we never fetched the result from there


async def test_finish_retries_keep_their_backoff_past_the_deadline(database: Database, stack: StackFactory) -> None:
    async with counting_proxy() as proxy:
        proxy["fail"] = True
        sim = fast_sim(result_host=proxy["url"])
        async with stack(database, sim, kie_result_hosts=[proxy["netloc"]]) as env:
            proxy["upstream"] = env.sim.url
            job_id = await env.submit()
            while proxy["hits"]["results"] < 1:
                await asyncio.sleep(0.02)
            job = await env.wait_state(job_id, ("finishing",))
            # past the deadline, next try in a minute (set while no attempt runs): the job must wait for it,
            # not be retried in a loop
            while True:
                async with env.db.session() as session:
                    moved = await session.execute(
                        sa.update(Job)
                        .where(Job.id == job_id, Job.lease_owner.is_(None), Job.error_code == "result_download_failed")
                        .values(deadline_at=job.created_at - timedelta(hours=1),
                                next_attempt_at=utcnow() + timedelta(seconds=60))
                    )  # fmt: skip
                if moved.rowcount == 1:
                    break
                await asyncio.sleep(0.01)
            hits = proxy["hits"]["results"]
            env.app.state.runtime.bus.wake_dispatchers()
            await asyncio.sleep(1.5)
            assert proxy["hits"]["results"] == hits
            assert (await env.job(job_id)).state == "finishing"
            proxy["fail"] = False
            await env.set_job(job_id, next_attempt_at=utcnow())
            env.app.state.runtime.bus.wake_dispatchers()
            await env.wait_for(job_id, "completed")
            assert await env.ledger(job_id) == ["reserve", "settle"]
