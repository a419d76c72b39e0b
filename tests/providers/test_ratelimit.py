"""The outbound rate limiter: a burst against the simulator's limit earns no 429, with Redis and without."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
import redis.asyncio as aioredis

from photobot.db import Database
from photobot.providers.assembly import build_rate_limiter
from photobot.providers.base import GenerationRequest
from photobot.providers.keypool import KeyPool
from photobot.providers.kie import KieProvider
from photobot.providers.ratelimit import MemoryRateLimiter, RedisRateLimiter
from photobot.providers.retry import RetryPolicy
from photobot.providers.simulator import Simulator
from photobot.providers.submit import Submitter
from photobot.settings import Settings
from tests.support.providers import Aux, provider_settings

KEY = "burst-key-0001"
WINDOW = 0.25


def req(aux: Aux) -> GenerationRequest:
    return GenerationRequest("nano-banana-pro", "p", (f"{aux.url}/input.png",), callback_url=aux.callback_url("b"))


@pytest.mark.parametrize(("backend", "count"), [("redis", 200), ("memory", 60)])
async def test_burst_never_earns_a_429(
    backend: str, count: int, redis_url: str, simulator: Simulator, aux: Aux,
    make_settings: Callable[..., Settings], http: httpx.AsyncClient,
) -> None:  # fmt: skip
    """200 createTask calls at once on one key against 20 per 0.25 s: all throttled, none rejected.

    The adapter and the limiter only (the key pool's database work is covered by the two-worker test), so the
    timing measures the limiter, not the database.
    """
    simulator.config.update({"rate_limit": 20, "rate_window_s": WINDOW, "callback_delay_s": 30.0})
    settings = provider_settings(make_settings, simulator, kie_rate_limit=20, kie_rate_window_s=WINDOW)
    redis = aioredis.Redis.from_url(redis_url) if backend == "redis" else None
    limiter = build_rate_limiter(settings, redis, prefix=f"test:{uuid.uuid4().hex}:")
    kie = KieProvider(http, settings)

    async def one() -> str:
        async with limiter.hold("key:1"):
            return (await kie.submit(req(aux), KEY)).task_id

    started = time.monotonic()
    try:
        task_ids = await asyncio.gather(*(one() for _ in range(count)))
    finally:
        if redis is not None:
            await redis.aclose()
    elapsed = time.monotonic() - started
    assert simulator.stats.rate_limited == 0
    assert len(set(task_ids)) == count
    assert elapsed >= (count / 20 - 1) * WINDOW  # it was really throttled, not lucky


async def test_submitter_burst_with_the_pool(
    sqlite_database: Database, simulator: Simulator, aux: Aux, make_settings: Callable[..., Settings],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    simulator.config.update({"rate_limit": 20, "rate_window_s": WINDOW, "callback_delay_s": 30.0})
    settings = provider_settings(make_settings, simulator, kie_rate_limit=20, kie_rate_window_s=WINDOW)
    pool = KeyPool(sqlite_database, "kie")
    await pool.sync_env_keys([KEY])
    submitter = Submitter(KieProvider(http, settings), pool, build_rate_limiter(settings), RetryPolicy(max_attempts=1))
    results = await asyncio.gather(*(submitter.submit(req(aux)) for _ in range(50)))
    assert simulator.stats.rate_limited == 0 and all(r.attempts == 1 for r in results)


async def test_memory_window_math() -> None:
    limiter = MemoryRateLimiter(3, 0.2)
    tokens = [limiter.attempt_now("k", f"t{i}") for i in range(3)]
    assert tokens == [0.0, 0.0, 0.0]
    assert 0 < limiter.attempt_now("k", "t3") <= 0.2  # every slot in flight: poll
    for i in range(3):
        limiter.release_now("k", f"t{i}")
    wait = limiter.attempt_now("k", "t3")
    assert 0.15 < wait <= 0.2  # the oldest completed slot leaves the window in ~0.2 s
    assert limiter.attempt_now("other", "x") == 0.0  # buckets are independent


async def test_in_flight_slots_count_until_released() -> None:
    limiter = MemoryRateLimiter(2, 0.05)
    t1, t2 = await limiter.acquire("k"), await limiter.acquire("k")
    await asyncio.sleep(0.1)  # longer than the window, but both calls are still running
    assert limiter.attempt_now("k", "t3") > 0
    await limiter.release("k", t1)
    await asyncio.sleep(0.06)
    assert limiter.attempt_now("k", "t3") == 0.0
    await limiter.release("k", t2)


async def test_redis_shared_between_limiters(redis_url: str) -> None:
    r1, r2 = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
    try:
        l1, l2 = RedisRateLimiter(r1, 2, 5.0), RedisRateLimiter(r2, 2, 5.0)
        await l1.acquire("k")
        await l2.acquire("k")
        assert await l1._attempt("k", "third") > 0
        assert await l2._attempt("other", "x") == 0
    finally:
        await r1.aclose()
        await r2.aclose()


async def test_redis_failure_falls_back_to_memory(caplog: pytest.LogCaptureFixture) -> None:
    dead = aioredis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    limiter = RedisRateLimiter(dead, 2, 0.1, timeout_s=0.3)
    try:
        started = time.monotonic()
        for _ in range(4):
            async with limiter.hold("k"):
                pass
        assert time.monotonic() - started >= 0.09  # the memory window still throttles
        assert "falling back to memory" in caplog.text
    finally:
        await dead.aclose()
