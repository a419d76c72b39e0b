"""The key pool on SQLite and PostgreSQL, with the simulator answering 401/402/433/429 for chosen keys."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import ProviderKey, utcnow
from photobot.providers.assembly import build_key_pool, build_rate_limiter, sync_env_keys
from photobot.providers.base import GenerationRequest
from photobot.providers.errors import NoKeyAvailable, classify_kie
from photobot.providers.keypool import KeyPool
from photobot.providers.kie import KieProvider
from photobot.providers.ratelimit import MemoryRateLimiter
from photobot.providers.retry import RetryPolicy
from photobot.providers.simulator import Simulator
from photobot.providers.submit import Submitter
from photobot.settings import Settings
from tests.support.providers import Aux, provider_settings

A, B, C = "pool-key-aaaa", "pool-key-bbbb", "pool-key-cccc"
FAST = RetryPolicy(base_s=0.005, cap_s=0.02, max_attempts=4)


def req(aux: Aux) -> GenerationRequest:
    return GenerationRequest("nano-banana-pro", "p", (f"{aux.url}/input.png",), callback_url=aux.callback_url("k"))


async def rows(db: Database) -> dict[str, ProviderKey]:
    async with db.session() as session:
        result = await session.execute(sa.select(ProviderKey))
        return {k.secret: k for k in result.scalars()}


async def make_pool(db: Database, *secrets: str) -> KeyPool:
    pool = KeyPool(db, "kie", cooldown_s=30, exhausted_s=600)
    assert await pool.sync_env_keys(secrets) == len(secrets)
    return pool


async def test_env_sync_is_idempotent(database: Database, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(kie_api_keys=f"{A},{B}")
    pool = build_key_pool(database, settings)
    assert await sync_env_keys(pool, settings) == 2
    assert await sync_env_keys(pool, settings) == 0
    stored = await rows(database)
    assert set(stored) == {A, B} and {k.label for k in stored.values()} == {"env"}


async def test_lru_order(database: Database) -> None:
    pool = await make_pool(database, A, B, C)
    picked = [(await pool.acquire()).secret for _ in range(5)]
    assert picked == [A, B, C, A, B]
    key = await pool.acquire()
    assert key.secret == C and C not in repr(key) and C not in str(key)


async def test_disable_on_401_and_fail_over(
    database: Database, simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    simulator.config.valid_keys = [B]
    pool = await make_pool(database, A, B)
    submission = await Submitter(KieProvider(http, settings), pool, MemoryRateLimiter(20, 1), FAST).submit(req(aux))
    stored = await rows(database)
    assert submission.key_id == stored[B].id and submission.attempts == 2
    assert stored[A].active is False and stored[A].disabled_reason == "provider_auth (401)"
    assert stored[A].failure_count == 1 and stored[B].active
    assert (await pool.acquire()).secret == B and (await pool.acquire()).secret == B


@pytest.mark.parametrize(("knob", "code"), [("exhausted_keys", 402), ("limited_keys", 433)])
async def test_exhausted_key_fails_over_within_the_same_job(
    knob: str, code: int, database: Database, simulator: Simulator, aux: Aux, settings: Settings,
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    simulator.config.update({knob: [A]})
    pool = await make_pool(database, A, B)
    sleeps: list[float] = []

    async def sleep(d: float) -> None:
        sleeps.append(d)

    submitter = Submitter(KieProvider(http, settings), pool, MemoryRateLimiter(20, 1), FAST, sleep=sleep)
    submission = await submitter.submit(req(aux))
    stored = await rows(database)
    assert submission.key_id == stored[B].id and sleeps == []  # at once, no backoff
    assert simulator.stats.create_calls[A] == 1 and simulator.stats.create_calls[B] == 1
    assert stored[A].active and stored[A].disabled_reason.startswith("exhausted:")
    assert str(code) in stored[A].disabled_reason
    assert stored[A].cooldown_until > utcnow() + timedelta(seconds=500)
    # a later success clears the exhausted mark
    await pool.report_success(await pool.get(stored[A].id))  # type: ignore[arg-type]
    assert (await rows(database))[A].disabled_reason is None


async def test_cooldown_on_429(
    database: Database, simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    simulator.config.burst_429 = 1
    pool = await make_pool(database, A, B)
    submission = await Submitter(KieProvider(http, settings), pool, MemoryRateLimiter(20, 1), FAST).submit(req(aux))
    stored = await rows(database)
    assert submission.key_id == stored[B].id
    assert stored[A].active and stored[A].disabled_reason is None
    assert utcnow() + timedelta(seconds=20) < stored[A].cooldown_until < utcnow() + timedelta(seconds=31)
    assert (await pool.acquire()).secret == B


async def test_no_usable_key_waits_with_a_retry_time(database: Database, caplog: pytest.LogCaptureFixture) -> None:
    pool = await make_pool(database, A, B)
    key_a, key_b = await pool.acquire(), await pool.acquire()
    await pool.report_failure(key_a, classify_kie(401, ""))
    await pool.report_failure(key_b, classify_kie(429, ""))
    with caplog.at_level(logging.WARNING), pytest.raises(NoKeyAvailable) as info:
        await pool.acquire()
    cooled_until = (await rows(database))[B].cooldown_until
    assert info.value.retry_at == cooled_until and info.value.transient and info.value.code == "provider_no_key"
    assert "no usable kie API key" in caplog.text and B not in caplog.text
    await pool.report_failure(key_b, classify_kie(401, ""))
    with pytest.raises(NoKeyAvailable) as info:
        await pool.acquire()
    assert info.value.retry_at > utcnow() + timedelta(seconds=50)  # nothing cooling: the default wait


async def test_two_workers_share_keys_and_limits(
    database: Database, redis_url: str, simulator: Simulator, aux: Aux,
    make_settings: Callable[..., Settings], http: httpx.AsyncClient,
) -> None:  # fmt: skip
    """Two workers (own DB engine, own Redis client, own pool): 80 jobs on 2 keys, 20 per 0.25 s, no 429."""
    simulator.config.update({"rate_limit": 20, "rate_window_s": 0.25, "callback_delay_s": 30.0})
    settings = provider_settings(make_settings, simulator, kie_rate_limit=20, kie_rate_window_s=0.25)
    await make_pool(database, A, B)
    second_db = Database(database.url)
    prefix = f"test:{uuid.uuid4().hex}:"
    redis_clients = [aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)]
    try:
        workers = [
            Submitter(
                KieProvider(http, settings), KeyPool(db, "kie"), build_rate_limiter(settings, r, prefix=prefix), FAST
            )
            for db, r in zip((database, second_db), redis_clients, strict=True)
        ]
        results = await asyncio.gather(*(workers[i % 2].submit(req(aux)) for i in range(80)))
    finally:
        await second_db.close()
        for client in redis_clients:
            await client.aclose()
    assert simulator.stats.rate_limited == 0
    assert all(r.attempts == 1 for r in results)
    assert simulator.stats.create_calls[A] + simulator.stats.create_calls[B] == 80
    # Both keys carry load; how evenly depends on scheduling (LRU order itself is pinned by test_lru_order).
    assert min(simulator.stats.create_calls[A], simulator.stats.create_calls[B]) > 0
