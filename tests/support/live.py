"""Live updates from the outside: reading a page's SSE stream, and a job that goes through the simulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from photobot.providers.simulator import Simulator
from photobot.providers.simulator.kie_api import callback_payload
from tests.support.images import striped_png


async def read_events(response: httpx.Response, into: list[dict[str, Any]]) -> None:
    """Parse an SSE stream into `into` as {"event", "data", "at"} dicts until it ends."""
    event: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event["event"] = line[6:].strip()
        elif line.startswith("data:"):
            event["data"] = json.loads(line[5:].strip())
        elif line == "" and "event" in event:
            event["at"] = loop.time()
            into.append(event)
            event = {}


async def submit(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """POST a guest photo with `token`; the 202 body."""
    response = await client.post(
        "/v1/jobs",
        headers={"Authorization": f"Bearer {token}"},
        files={"image": ("guest.png", striped_png((320, 240)), "image/png")},
        data={"style": "pb_a"},
    )
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def finished_task(sim: Simulator, timeout: float = 10.0) -> dict[str, Any]:
    """The first task the simulator has finished (waiting for one)."""
    async with asyncio.timeout(timeout):
        while True:
            done = [t for t in sim.state.tasks.values() if t["state"] == "success"]
            if done:
                return done[0]
            await asyncio.sleep(0.02)


@asynccontextmanager
async def held_callbacks(sim: Simulator) -> AsyncIterator[None]:
    """The simulator finishes tasks but calls nobody back: the test decides when (`deliver_callback`)."""
    sim.config.drop_rate = 1.0
    sim.state.tasks.clear()
    try:
        yield
    finally:
        sim.config.drop_rate = 0.0


async def deliver_callback(client: httpx.AsyncClient, sim: Simulator) -> None:
    """Send the first finished task's callback to the URL our createTask gave, as kie.ai would."""
    task = await finished_task(sim)
    answer = await client.post(json.loads(task["param"])["callBackUrl"], json=callback_payload(sim.state, task))
    assert answer.status_code == 200, answer.text
