"""Factories from Settings, and the secrets invariant: keys never reach logs, errors or reprs."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from photobot.db import Database
from photobot.providers.assembly import build_key_pool, build_provider, build_rate_limiter
from photobot.providers.base import GenerationRequest, Provider
from photobot.providers.errors import ProviderError
from photobot.providers.fal import FalProvider
from photobot.providers.kie import KieProvider
from photobot.providers.models import slot_name
from photobot.providers.ratelimit import MemoryRateLimiter, RedisRateLimiter
from photobot.providers.retry import RetryPolicy
from photobot.providers.simulator import Simulator
from photobot.providers.submit import Submitter
from photobot.settings import Settings
from tests.support.providers import Aux, provider_settings

BAD, BROKE, GOOD = "sk-bad-0123456789abcdef", "sk-broke-0123456789abcdef", "sk-good-0123456789abcdef"
HMAC = "hmac-secret-0123456789"


async def test_factories(
    make_settings: Callable[..., Settings], sqlite_database: Database, http: httpx.AsyncClient
) -> None:
    client = http
    kie_settings = make_settings(kie_api_keys="a,b")
    provider = build_provider(kie_settings, client)
    assert isinstance(provider, KieProvider) and isinstance(provider, Provider)
    assert isinstance(build_provider(make_settings(), client, name="fal"), FalProvider)
    assert isinstance(build_provider(make_settings(provider="simulator"), client), KieProvider)
    assert slot_name("simulator") == "kie" and slot_name("fal") == "fal"
    assert build_key_pool(sqlite_database, make_settings(provider="fal")).provider == "fal"
    limiter = build_rate_limiter(make_settings(kie_rate_limit=15, kie_rate_window_s=10))
    assert type(limiter) is MemoryRateLimiter and limiter.limit == 15 and limiter.window_s == pytest.approx(10.5)
    import redis.asyncio as aioredis

    redis = aioredis.Redis()
    assert isinstance(build_rate_limiter(make_settings(), redis), RedisRateLimiter)
    await redis.aclose()


async def test_keys_never_in_logs_errors_or_reprs(
    sqlite_database: Database, simulator: Simulator, aux: Aux, make_settings: Callable[..., Settings],
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    simulator.config.update({"valid_keys": [BROKE, GOOD], "exhausted_keys": [BROKE]})
    settings = provider_settings(make_settings, simulator, kie_webhook_hmac_key=HMAC)
    pool = build_key_pool(sqlite_database, settings)
    await pool.sync_env_keys([BAD, BROKE, GOOD])
    kie = KieProvider(http, settings)
    submitter = Submitter(kie, pool, MemoryRateLimiter(20, 1), RetryPolicy(base_s=0.001, max_attempts=2))
    req = GenerationRequest("nano-banana-pro", "p", (f"{aux.url}/input.png",), callback_url=aux.callback_url("s"))
    texts = [repr(kie), repr(settings), repr(pool), repr(submitter)]
    with caplog.at_level(logging.DEBUG, logger="photobot"):
        try:
            await submitter.submit(req)
        except ProviderError as exc:
            texts += [str(exc), repr(exc)]
        for secret in (BAD, BROKE, GOOD):
            with pytest.raises(ProviderError) as info:
                await kie.submit(GenerationRequest("nano-banana-pro", f"Bearer {secret}", ("ftp://x",)), secret)
            texts += [str(info.value), repr(info.value)]
    texts += [r.getMessage() for r in caplog.records if r.name.startswith("photobot")]
    joined = "\n".join(texts)
    for secret in (BAD, BROKE, GOOD, HMAC):
        assert secret not in joined
    assert "disabled" in caplog.text and "exhausted" in caplog.text  # the events were logged, masked
    assert submission_key_masked(GOOD) in caplog.text or "key #" in caplog.text


def submission_key_masked(secret: str) -> str:
    return "…" + secret[-4:]
