"""Build the provider objects from Settings and shared clients: explicit dependencies, no globals.

The app's lifespan (or the worker) owns one `httpx.AsyncClient`, the `Database` and the optional Redis client,
and calls these factories once:

    provider = build_provider(settings, http)
    pool = build_key_pool(database, settings)
    await sync_env_keys(pool, settings)
    limiter = build_rate_limiter(settings, redis)
    submitter = Submitter(provider, pool, limiter)

`simulator` is the kie adapter pointed at the simulator (`PHOTOBOT_KIE_BASE_URL` / `PHOTOBOT_KIE_UPLOAD_BASE_URL`
set to its address), so keys are stored under provider "kie" for both.
"""

from __future__ import annotations

from typing import Any

import httpx

from photobot.db import Database
from photobot.providers.base import Provider
from photobot.providers.fal import FalProvider
from photobot.providers.keypool import KeyPool
from photobot.providers.kie import KieProvider
from photobot.providers.ratelimit import MemoryRateLimiter, RedisRateLimiter
from photobot.providers.signatures import JwksCache
from photobot.settings import ProviderName, Settings

RATE_MARGIN = 0.05  # keep 5 % below the provider's window: clocks and proxies are not exact


def key_namespace(name: str | ProviderName) -> str:
    """The `provider_keys.provider` value for a provider name (the simulator shares kie's keys)."""
    return "fal" if str(name) == ProviderName.fal.value else "kie"


def build_provider(
    settings: Settings,
    client: httpx.AsyncClient,
    *,
    name: str | ProviderName | None = None,
    jwks: JwksCache | None = None,
) -> Provider:
    chosen = ProviderName(name) if name is not None else settings.resolved_provider
    if chosen is ProviderName.fal:
        return FalProvider(client, settings, jwks=jwks)
    return KieProvider(client, settings)


def build_key_pool(database: Database, settings: Settings, *, name: str | ProviderName | None = None) -> KeyPool:
    chosen = name if name is not None else settings.resolved_provider
    return KeyPool(database, key_namespace(chosen), cooldown_s=settings.kie_rate_window_s)


async def sync_env_keys(pool: KeyPool, settings: Settings) -> int:
    """Put the keys from the environment into the pool (idempotent; run at start)."""
    if pool.provider == "fal":
        secrets = [settings.fal_key.get_secret_value()] if settings.fal_key else []
    else:
        secrets = [s.get_secret_value() for s in settings.kie_api_keys]
    return await pool.sync_env_keys(secrets)


def build_rate_limiter(
    settings: Settings, redis: Any | None = None, *, prefix: str = "photobot:ratelimit:"
) -> MemoryRateLimiter:
    """createTask slots per key: in Redis when there is one (shared by every worker), else in memory."""
    window = settings.kie_rate_window_s * (1 + RATE_MARGIN)
    if redis is None:
        return MemoryRateLimiter(settings.kie_rate_limit, window)
    timeout = max(settings.redis_timeout_s, 0.25)
    return RedisRateLimiter(redis, settings.kie_rate_limit, window, prefix=prefix, timeout_s=timeout)
