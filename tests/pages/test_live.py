"""Live updates end to end: a real job through the simulator, the callback sent by the test, SSE on the page.

The simulator is told to drop its own callbacks (`drop_rate=1`), so the test sends the very callback the
simulator would have sent, at a moment it knows, and measures how long the page's stream takes to say
"completed". With Redis, the page is served by one web instance and the callback handled by another.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx

from photobot.app import create_app
from photobot.db import Database
from photobot.providers.simulator import SimConfig, Simulator
from photobot.providers.simulator.kie_api import callback_payload
from photobot.settings import Settings
from tests.support.live import finished_task, read_events, submit
from tests.support.seed import seed
from tests.support.servers import free_port, serve


@asynccontextmanager
async def simulator() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(callback_delay_s=0.05, drop_rate=1.0, long_side=128)) as sim:
        yield sim


async def follow_and_call_back(
    page_client: httpx.AsyncClient, callback_client: httpx.AsyncClient, sim: Simulator, public_id: str
) -> tuple[list[dict[str, Any]], float]:
    """Open the page's stream, send the provider callback, return the events and when the callback was sent."""
    events: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    async with page_client.stream("GET", f"/p/{public_id}/events") as response:
        assert response.status_code == 200
        reader = asyncio.create_task(read_events(response, events))
        task = await finished_task(sim)
        callback_url = json.loads(task["param"])["callBackUrl"]
        sent_at = loop.time()
        answer = await callback_client.post(callback_url, json=callback_payload(sim.state, task))
        assert answer.status_code == 200, answer.text
        await asyncio.wait_for(reader, 10)  # the stream ends after the final state
    return events, sent_at


async def test_sse_delivers_completion_within_a_second_of_the_callback(
    sqlite_database: Database, make_settings: Callable[..., Settings]
) -> None:
    seeded = await seed(sqlite_database)
    async with simulator() as sim:
        port = free_port()
        settings = make_settings(
            database_url=sqlite_database.url,
            public_base_url=f"http://127.0.0.1:{port}",
            kie_base_url=sim.url,
            kie_upload_base_url=sim.url,
        )
        app = create_app(settings)
        async with serve(app, port=port) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            job = await submit(client, seeded["kiosk"])
            public_id = job["page_url"].rsplit("/", 1)[-1]
            events, sent_at = await follow_and_call_back(client, client, sim, public_id)
            statuses = [e["data"]["status"] for e in events]
            assert statuses[-1] == "completed", statuses
            assert set(statuses) <= {"pending", "processing", "completed"}
            latency = events[-1]["at"] - sent_at
            assert latency < 1.0, f"completed reached the page {latency:.2f}s after the callback"
            photo = await client.get(events[-1]["data"]["result_url"])
            assert photo.status_code == 200 and photo.headers["content-type"].startswith("image/")
            html = (await client.get(f"/p/{public_id}")).text
            assert 'id="done"' in html and "Your photo is ready" in html


async def test_changes_travel_between_web_instances_through_redis(
    sqlite_database: Database, make_settings: Callable[..., Settings], redis_url: str
) -> None:
    """The guest watches instance A (web only); instance B (web + dispatcher) takes the callback."""
    seeded = await seed(sqlite_database)
    async with simulator() as sim, AsyncExitStack() as stack:
        ports = free_port(), free_port()
        apps = []
        for port, dispatcher in zip(ports, (False, True), strict=True):
            settings = make_settings(
                database_url=sqlite_database.url,
                redis_url=redis_url,
                public_base_url=f"http://127.0.0.1:{port}",
                kie_base_url=sim.url,
                kie_upload_base_url=sim.url,
            )
            base = await stack.enter_async_context(serve(create_app(settings, run_dispatcher=dispatcher), port=port))
            apps.append(await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=30)))
        web_a, web_b = apps
        job = await submit(web_a, seeded["kiosk"])  # accepted by A; B's dispatcher is woken through Redis
        public_id = job["page_url"].rsplit("/", 1)[-1]
        events, sent_at = await follow_and_call_back(web_a, web_b, sim, public_id)
        assert events[-1]["data"]["status"] == "completed", events
        latency = events[-1]["at"] - sent_at
        assert latency < 1.0, f"completed reached instance A {latency:.2f}s after the callback to B"
