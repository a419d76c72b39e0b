"""The provider side of a process, built once: adapters, key pools, rate limiters, submitters, result fetching.

`Providers.open(runtime)` builds, for kie (which the simulator impersonates) and fal, the adapter, its key pool
(env keys synced in) and a `Submitter`; plus where results may be downloaded from. When the configured
provider is the simulator and no kie.ai address was set, a simulator is started in this process on a free
loopback port, and the result fetcher is allowed to reach exactly that address (everything else private
stays refused).

The factories below (`build_provider`, `build_key_pool`, `build_rate_limiter`) are what `open` uses; tests call
them directly. `slot_name` is the one place that knows the simulator speaks kie.ai's API.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from photobot.db import Database
from photobot.net.addresses import AddressPolicy
from photobot.net.fetcher import SafeFetcher
from photobot.providers.base import Provider
from photobot.providers.fal import FalProvider
from photobot.providers.keypool import KeyPool
from photobot.providers.kie import KieProvider
from photobot.providers.ratelimit import MemoryRateLimiter, RedisRateLimiter
from photobot.providers.signatures import JwksCache
from photobot.providers.submit import Submitter
from photobot.runtime import Runtime
from photobot.settings import ProviderName, Settings
from photobot.signing import CallbackTokens

log = logging.getLogger(__name__)

DEFAULT_KIE_BASE = "https://api.kie.ai"
SIMULATOR_KEY = "simulator-key-0001"


@dataclass
class ProviderSlot:
    name: str
    adapter: Provider
    pool: KeyPool
    submitter: Submitter
    result_hosts: list[str]


@dataclass
class Providers:
    slots: dict[str, ProviderSlot]
    tokens: CallbackTokens
    result_fetcher: SafeFetcher

    def get(self, name: str) -> ProviderSlot:
        return self.slots[slot_name(name)]

    @classmethod
    @asynccontextmanager
    async def open(cls, runtime: Runtime, *, start_simulator: bool = True) -> AsyncIterator[Providers]:
        settings = runtime.settings
        async with AsyncExitStack() as stack:
            kie_base, kie_upload = settings.kie_base_url, settings.kie_upload_base_url
            simulator_url = None
            if (
                start_simulator
                and settings.resolved_provider is ProviderName.simulator
                and kie_base == DEFAULT_KIE_BASE
            ):
                simulator_url = await stack.enter_async_context(_in_process_simulator(settings))
                kie_base = kie_upload = simulator_url
            elif settings.resolved_provider is ProviderName.simulator and kie_base != DEFAULT_KIE_BASE:
                simulator_url = kie_base  # a standalone simulator (`photobot simulator`) elsewhere

            limiter = build_rate_limiter(settings, runtime.redis)
            kie = build_provider(settings, runtime.http, name="kie", kie_base_url=kie_base, kie_upload_url=kie_upload)
            kie_pool = build_key_pool(runtime.db, settings, name="kie")
            kie_hosts = list(settings.kie_result_hosts)
            if simulator_url:
                kie_hosts.append(urlsplit(simulator_url).netloc)

            jwks = JwksCache(runtime.http, settings.fal_jwks_url)
            fal = build_provider(settings, runtime.http, name="fal", jwks=jwks)
            fal_pool = build_key_pool(runtime.db, settings, name="fal")
            if start_simulator:  # only processes that dispatch use keys
                extra_kie = [SIMULATOR_KEY] if simulator_url and not settings.kie_api_keys else []
                if not await _sync_keys(settings, kie_pool, fal_pool, extra_kie):
                    sync = asyncio.create_task(_sync_keys_until_done(settings, kie_pool, fal_pool, extra_kie))
                    stack.push_async_callback(_cancel, sync)

            slots = {
                "kie": ProviderSlot("kie", kie, kie_pool, Submitter(kie, kie_pool, limiter), kie_hosts),
                "fal": ProviderSlot(
                    "fal", fal, fal_pool, Submitter(fal, fal_pool, limiter), list(settings.fal_result_hosts)
                ),
            }
            result_fetcher = _result_fetcher(settings, simulator_url, runtime.ssl_context)
            stack.push_async_callback(result_fetcher.aclose)
            yield cls(
                slots=slots,
                tokens=CallbackTokens(settings.secret_keys()),
                result_fetcher=result_fetcher,
            )


# --- factories ---------------------------------------------------------------------------------------------
RATE_MARGIN = 0.05  # keep 5 % below the provider's window: clocks and proxies are not exact


def slot_name(name: str | ProviderName) -> str:
    """The adapter (and `provider_keys.provider` namespace) serving a provider name: the simulator speaks kie."""
    return "fal" if str(name) == ProviderName.fal.value else "kie"


def provider_for_style(settings: Settings, style_provider: str | None, style_model: str) -> tuple[str, str]:
    """(provider, model) a job of this style uses: the style's provider or the configured one (the simulator
    stands in for kie); a kie model sent to fal becomes the configured fal model."""
    from photobot.providers.models import spec_for

    provider = slot_name(style_provider or settings.resolved_provider.value)
    model = style_model
    if provider == "fal" and spec_for(model).provider != "fal":
        model = settings.fal_model
    return provider, model


def build_provider(
    settings: Settings,
    client: httpx.AsyncClient,
    *,
    name: str | ProviderName | None = None,
    jwks: JwksCache | None = None,
    kie_base_url: str | None = None,
    kie_upload_url: str | None = None,
) -> Provider:
    if slot_name(name if name is not None else settings.resolved_provider) == "fal":
        return FalProvider(client, settings, jwks=jwks)
    return KieProvider(client, settings, base_url=kie_base_url, upload_base_url=kie_upload_url)


def build_key_pool(database: Database, settings: Settings, *, name: str | ProviderName | None = None) -> KeyPool:
    chosen = name if name is not None else settings.resolved_provider
    return KeyPool(database, slot_name(chosen), cooldown_s=settings.kie_rate_window_s)


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


async def _sync_keys(settings: Settings, kie: KeyPool, fal: KeyPool, extra_kie: list[str]) -> bool:
    """Put the environment's keys into the pools; False when the database is not reachable."""
    try:
        await sync_env_keys(kie, settings)
        if extra_kie:
            await kie.sync_env_keys(extra_kie)
        await sync_env_keys(fal, settings)
    except Exception as exc:
        log.warning("could not sync API keys yet; retrying", extra={"error": type(exc).__name__})
        return False
    return True


async def _sync_keys_until_done(settings: Settings, kie: KeyPool, fal: KeyPool, extra_kie: list[str]) -> None:
    """Retry in the background while the database is down, so a process can start (and report not-ready)
    during an outage instead of crashing."""
    delay = 1.0
    while not await _sync_keys(settings, kie, fal, extra_kie):
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _result_fetcher(settings: Settings, simulator_url: str | None, ssl_context: ssl.SSLContext) -> SafeFetcher:
    """Results come from provider CDNs; with a local simulator, also from exactly its loopback address."""
    timeout = max(settings.provider_timeout_s, 60.0)
    address = _ip_literal(urlsplit(simulator_url).hostname) if simulator_url else None
    if settings.allow_private_networks or address is None:
        return SafeFetcher.from_settings(settings, timeout=timeout, ssl_context=ssl_context)
    return SafeFetcher.from_settings(
        settings,
        allow_http=True,
        address_policy=AddressPolicy.allowing([str(address)]),
        timeout=timeout,
        ssl_context=ssl_context,
    )


def _ip_literal(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The simulator's address when it is an IP literal (the in-process one binds 127.0.0.1)."""
    try:
        return ipaddress.ip_address(host or "")
    except ValueError:
        return None


@asynccontextmanager
async def _in_process_simulator(settings: Settings) -> AsyncIterator[str]:
    from photobot.providers.simulator.config import SimConfig
    from photobot.providers.simulator.runner import Simulator

    config = SimConfig(callback_delay_s=settings.simulator_callback_delay_s)
    if settings.kie_webhook_hmac_key is not None:
        config.hmac_key = settings.kie_webhook_hmac_key.get_secret_value()
    sim = Simulator(config)
    await sim.start(port=settings.simulator_port)
    log.warning("no kie.ai key configured: using the built-in simulator at %s", sim.url)
    try:
        yield sim.url
    finally:
        await sim.stop()
