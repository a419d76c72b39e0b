"""Submission rate limit per token (limits.aio): memory, Redis, and a dead Redis that must not stall intake."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as aioredis

from photobot.db import Database
from photobot.settings import Settings
from tests.support.api import assert_accepted, assert_problem, new_token, submit_json, unchanged
from tests.support.servers import free_port
from tests.support.stack import Stack, open_app


async def exhaust(api: Stack, allowed: int) -> None:
    for _ in range(allowed):
        assert_accepted(await submit_json(api))
    async with unchanged(api):
        response = await submit_json(api)
        body = assert_problem(response, 429, "rate_limited")
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60, retry_after
        assert body["detail"]
    # the limit is per token: another kiosk of the same event is not affected
    _, other = await new_token(api, "event", event_id=api.event_id)
    assert_accepted(await submit_json(api, token=other))


async def test_rate_limit_in_memory(database: Database, make_settings: Callable[..., Settings]) -> None:
    async with open_app(database, make_settings, submit_rate_limit="3/minute") as served:
        await exhaust(served, 3)
        # a refused request is still a request: GET is not limited
        assert (await served.client.get("/v1/jobs/x", headers=served.auth)).status_code == 404


async def test_rate_limit_in_redis(
    sqlite_database: Database, make_settings: Callable[..., Settings], redis_url: str
) -> None:
    async with open_app(sqlite_database, make_settings, submit_rate_limit="3/minute", redis_url=redis_url) as served:
        await exhaust(served, 3)
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() for k in await client.keys("*")]
    finally:
        await client.aclose()
    assert any("submit" in k for k in keys), keys  # the counters really live in Redis
    # a second app on the same Redis (another web process) shares the count
    async with open_app(
        sqlite_database, make_settings, submit_rate_limit="3/minute", redis_url=redis_url, reuse=served
    ) as again:
        assert_problem(await submit_json(again), 429, "rate_limited")


async def test_dead_redis_falls_back_to_memory(database: Database, make_settings: Callable[..., Settings]) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with open_app(database, make_settings, submit_rate_limit="3/minute", redis_url=dead) as served:
        api = served
        started = time.monotonic()
        for _ in range(3):
            assert_accepted(await submit_json(api))
        assert time.monotonic() - started < 10  # no stall on the outage
        assert_problem(await submit_json(api), 429, "rate_limited")  # still limited, in memory


async def test_hanging_redis_does_not_stall_intake(
    sqlite_database: Database, make_settings: Callable[..., Settings]
) -> None:
    """A Redis that accepts connections and never answers: one timeout, then memory; no per-request stall."""
    import asyncio

    held: list[asyncio.StreamWriter] = []

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read(1 << 20)

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with open_app(
            sqlite_database,
            make_settings,
            submit_rate_limit="3/minute",
            redis_url=f"redis://127.0.0.1:{port}/0",
            redis_timeout_s=1.0,
        ) as served:
            api = served
            timings = []
            for _ in range(3):
                started = time.monotonic()
                assert_accepted(await submit_json(api))
                timings.append(time.monotonic() - started)
            # the first request pays one Redis timeout (1 s) in the limiter, which then stays on memory; the
            # dispatcher wake-up (a Redis publish) runs after the 202, so no request waits for it
            assert timings[0] < 4 and max(timings[1:]) < 0.9, timings
            assert_problem(await submit_json(api), 429, "rate_limited")
    finally:
        for writer in held:
            writer.close()
        server.close()
