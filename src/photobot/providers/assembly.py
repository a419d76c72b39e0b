"""The provider side of a process, built once: adapters, key pools, rate limiters, submitters, result fetching.

`Providers.open(runtime)` builds, for kie (which the simulator impersonates) and fal, the adapter, its key pool
(env keys synced in) and a `Submitter`; plus where results may be downloaded from. Which provider is live
follows what the operator did (`choose_provider`: PHOTOBOT_PROVIDER, else whoever has keys in the environment or
the pool, else the simulator) and is said in one start-up line. When the simulator is live and no kie.ai address
was set, a simulator is started in this process on a free loopback port, serving kie and fal styles alike; the
result fetcher is allowed to reach exactly that address (everything else private stays refused). A second
line says whether provider callbacks can reach this server (`report_callback_reach`).

The factories below (`build_provider`, `build_key_pool`, `build_rate_limiter`) are what `open` uses; tests call
them directly. `providers.models.slot_name` is the one place that knows the simulator speaks kie.ai's API.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from photobot.db import Database
from photobot.net.addresses import AddressPolicy
from photobot.net.fetcher import SafeFetcher
from photobot.providers.base import Provider
from photobot.providers.fal import FalProvider
from photobot.providers.inputs import is_public_url
from photobot.providers.keypool import KeyPool
from photobot.providers.kie import KieProvider
from photobot.providers.models import slot_name
from photobot.providers.ratelimit import MemoryRateLimiter, RedisRateLimiter
from photobot.providers.signatures import JwksCache
from photobot.providers.submit import Submitter
from photobot.runtime import Runtime
from photobot.settings import ProviderName, Settings, listening_url
from photobot.signing import PROBE_HEADER, CallbackTokens

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


@dataclass(frozen=True)
class LiveProvider:
    """The provider new jobs go to in this process, and why: what the start-up line says."""

    name: str  # kie | fal | simulator
    reason: str

    @property
    def slot(self) -> str:
        return slot_name(self.name)


@dataclass
class Providers:
    slots: dict[str, ProviderSlot]
    tokens: CallbackTokens
    result_fetcher: SafeFetcher
    live: LiveProvider = field(default_factory=lambda: LiveProvider("kie", "default"))
    simulator_url: str | None = None

    def get(self, name: str) -> ProviderSlot:
        return self.slots[slot_name(name)]

    @classmethod
    @asynccontextmanager
    async def open(cls, runtime: Runtime, *, start_simulator: bool = True) -> AsyncIterator[Providers]:
        """`start_simulator` is set in processes that dispatch jobs (they own keys, the simulator and the
        start-up checks); a web-only process just follows the same choice of provider."""
        settings = runtime.settings
        async with AsyncExitStack() as stack:
            kie_pool = build_key_pool(runtime.db, settings, name="kie")
            fal_pool = build_key_pool(runtime.db, settings, name="fal")
            synced = await _sync_keys(settings, kie_pool, fal_pool) if start_simulator else True
            live = await choose_provider(settings, kie_pool, fal_pool)
            kie_base, kie_upload = settings.kie_base_url, settings.kie_upload_base_url
            simulator_url = None
            if live.name == ProviderName.simulator.value:
                if kie_base != DEFAULT_KIE_BASE:
                    simulator_url = kie_base  # a standalone simulator (`photobot simulator`) elsewhere
                elif start_simulator:
                    simulator_url = await stack.enter_async_context(_in_process_simulator(settings))
                    kie_base = kie_upload = simulator_url
            fal_settings = fal_on_simulator(settings, simulator_url)

            limiter = build_rate_limiter(settings, runtime.redis)
            kie = build_provider(settings, runtime.http, name="kie", kie_base_url=kie_base, kie_upload_url=kie_upload)
            jwks = JwksCache(runtime.http, fal_settings.fal_jwks_url)
            fal = build_provider(fal_settings, runtime.http, name="fal", jwks=jwks)
            kie_hosts, fal_hosts = list(settings.kie_result_hosts), list(settings.fal_result_hosts)
            if simulator_url:
                kie_hosts.append(urlsplit(simulator_url).netloc)
                fal_hosts.append(urlsplit(simulator_url).netloc)
            if start_simulator:  # only processes that dispatch use keys
                with_sim = simulator_url is not None
                if not (synced and await _simulator_keys(kie_pool, fal_pool, with_sim)):
                    sync = asyncio.create_task(_sync_keys_until_done(settings, kie_pool, fal_pool, with_sim))
                    stack.push_async_callback(_cancel, sync)
            _log_live(live, simulator_url, start_simulator)

            slots = {
                "kie": ProviderSlot("kie", kie, kie_pool, Submitter(kie, kie_pool, limiter), kie_hosts),
                "fal": ProviderSlot("fal", fal, fal_pool, Submitter(fal, fal_pool, limiter), fal_hosts),
            }
            result_fetcher = _result_fetcher(settings, simulator_url, runtime.ssl_context)
            stack.push_async_callback(result_fetcher.aclose)
            if start_simulator:
                check = asyncio.create_task(report_callback_reach(runtime, live, simulator_url))
                stack.push_async_callback(_cancel, check)
            yield cls(
                slots=slots,
                tokens=CallbackTokens(settings.secret_keys()),
                result_fetcher=result_fetcher,
                live=live,
                simulator_url=simulator_url,
            )


# --- which provider is live ------------------------------------------------------------------------------------
PROVIDER_LABELS = {"kie": "kie.ai", "fal": "fal.ai"}


async def choose_provider(settings: Settings, kie: KeyPool, fal: KeyPool) -> LiveProvider:
    """What the operator did decides: PHOTOBOT_PROVIDER when set; else the provider that has keys — in the
    environment or in the pool (`photobot keys add`, `POST /v1/admin/keys`), kie.ai first; the simulator only
    when there is no key at all. Keys are counted in any state: a key the provider refused is still the
    operator's choice of provider (jobs then wait for a usable key instead of going to the simulator)."""
    if settings.provider is not None:
        return LiveProvider(settings.provider.value, f"PHOTOBOT_PROVIDER={settings.provider.value}")
    env = {"kie": len(settings.kie_api_keys), "fal": 1 if settings.fal_key else 0}
    counted, where = dict(env), "in the key pool"
    try:
        counted = {"kie": await kie.count(excluding=[SIMULATOR_KEY]), "fal": await fal.count(excluding=[SIMULATOR_KEY])}
    except Exception as exc:  # the database is down: the environment's keys are all we can count
        log.warning("could not read the key pool to choose a provider", extra={"error": type(exc).__name__})
        where = "in the environment (the key pool could not be read)"
    for name in ("kie", "fal"):
        n = max(counted[name], env[name])
        if n:
            return LiveProvider(name, f"{n} {PROVIDER_LABELS[name]} key{'s' if n != 1 else ''} {where}")
    return LiveProvider("simulator", "no kie.ai or fal.ai key in the key pool or the environment")


def _log_live(live: LiveProvider, simulator_url: str | None, dispatching: bool) -> None:
    """The start-up line: which provider is live, and why."""
    if live.name != ProviderName.simulator.value:
        log.info("provider: %s (%s)", PROVIDER_LABELS[live.name], live.reason)
    elif simulator_url:
        hint = (
            ""
            if live.reason.startswith("PHOTOBOT_PROVIDER")
            else "; to use kie.ai: photobot keys add --provider kie KEY, then restart"
        )
        log.warning(
            "provider: the built-in simulator at %s, for kie and fal styles (%s%s)", simulator_url, live.reason, hint
        )
    elif not dispatching:
        log.info("provider: the simulator (%s); this process does not dispatch, the workers run it", live.reason)


def fal_on_simulator(settings: Settings, simulator_url: str | None) -> Settings:
    """fal's addresses on the simulator (its fal mode) unless set on purpose: PHOTOBOT_PROVIDER=simulator then
    serves fal styles too, with no further settings."""
    if simulator_url is None:
        return settings
    defaults = {name: Settings.model_fields[name].default for name in ("fal_queue_url", "fal_rest_url", "fal_jwks_url")}
    wanted = {
        "fal_queue_url": f"{simulator_url}/fal/queue",
        "fal_rest_url": f"{simulator_url}/fal",
        "fal_jwks_url": f"{simulator_url}/fal/.well-known/jwks.json",
    }
    update = {name: url for name, url in wanted.items() if getattr(settings, name) == defaults[name]}
    return settings.model_copy(update=update) if update else settings


# --- can the provider call us back? ----------------------------------------------------------------------------
REACH_TIMEOUT_S = 30.0


async def report_callback_reach(runtime: Runtime, live: LiveProvider, simulator_url: str | None) -> None:
    """One line at start-up saying whether provider callbacks can reach this server.

    The simulator calls `PHOTOBOT_PUBLIC_BASE_URL` as it would call back (a `/healthz` probe that only a Photobot
    holding our secret can answer, retried while the server starts listening). For a real provider, a loopback,
    private or `.local` address can never be reached from the internet. Either way a bad address means jobs
    finish only through the reconciler, after `PHOTOBOT_RECONCILE_AFTER_S`."""
    settings = runtime.settings
    base = settings.public_base_url
    fallback = f"jobs finish only through the reconciler ({settings.reconcile_after_s} s after submission)"
    if live.name == ProviderName.simulator.value:
        if simulator_url is None:
            return
        error = await probe_reach(runtime, base)
        if error is None:
            log.info("simulator: callbacks to %s reach this server", base)
        else:
            log.warning(
                "simulator: callbacks to %s cannot reach this server (%s): %s. Set PHOTOBOT_PUBLIC_BASE_URL to an "
                "address of this server, or leave it unset to follow PHOTOBOT_HOST and PHOTOBOT_PORT (%s)",
                base, error, fallback, settings.public_base_url_source,
            )  # fmt: skip
        return
    if not await is_public_url(base, allow_private_networks=settings.allow_private_networks):
        log.warning(
            "%s cannot call back %s (not a public address): %s. Set PHOTOBOT_PUBLIC_BASE_URL to this server's "
            "public https address", PROVIDER_LABELS[live.slot], base, fallback,
        )  # fmt: skip


async def probe_reach(runtime: Runtime, base_url: str, *, timeout_s: float = REACH_TIMEOUT_S) -> str | None:
    """None when `base_url` reaches a Photobot with our secret; else what went wrong (for the log line).

    This runs while the server is still starting, so it retries; once our own listening address answers (the
    server is up) the public address gets two more seconds, not the whole `timeout_s`."""
    settings = runtime.settings
    own = listening_url(settings.host, settings.port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        error = await _probe_once(runtime, base_url)
        if error is None:
            return None
        if own != base_url and loop.time() + 2.0 < deadline and await _probe_once(runtime, own) is None:
            deadline = loop.time() + 2.0  # we are listening, the public address does not lead here
        if loop.time() >= deadline:
            return error
        await asyncio.sleep(0.25)


async def _probe_once(runtime: Runtime, base_url: str) -> str | None:
    probe = runtime.reach_probe
    nonce = probe.nonce()
    try:
        answer = await runtime.http.get(
            f"{base_url}/healthz", headers={PROBE_HEADER: nonce}, timeout=2.0, follow_redirects=False
        )
    except httpx.HTTPError as exc:
        return type(exc).__name__
    if probe.verify(nonce, answer.headers.get(PROBE_HEADER)):
        return None
    # Something answers there, but not a Photobot with our secret: it would refuse our callback tokens.
    return f"HTTP {answer.status_code} from something other than this Photobot"


# --- factories ---------------------------------------------------------------------------------------------
RATE_MARGIN = 0.05  # keep 5 % below the provider's window: clocks and proxies are not exact


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


async def _sync_keys(settings: Settings, kie: KeyPool, fal: KeyPool) -> bool:
    """Put the environment's keys into the pools; False when the database is not reachable."""
    try:
        await sync_env_keys(kie, settings)
        await sync_env_keys(fal, settings)
    except Exception as exc:
        log.warning("could not sync API keys yet; retrying", extra={"error": type(exc).__name__})
        return False
    return True


async def _simulator_keys(kie: KeyPool, fal: KeyPool, simulator: bool) -> bool:
    """The simulator's own key (label `simulator`) in each pool that has no other key while the simulator is live;
    switched off while a real provider is, so it is never sent to kie.ai or fal.ai and never counts as the
    operator's key."""
    try:
        for pool in (kie, fal):
            if not simulator:
                await pool.set_active(SIMULATOR_KEY, False, "the simulator's key: a real provider is live")
            elif await pool.count(excluding=[SIMULATOR_KEY]) == 0:
                await pool.sync_env_keys([SIMULATOR_KEY], label="simulator")
                await pool.set_active(SIMULATOR_KEY, True)
    except Exception as exc:
        log.warning("could not set up the simulator's key yet; retrying", extra={"error": type(exc).__name__})
        return False
    return True


async def _sync_keys_until_done(settings: Settings, kie: KeyPool, fal: KeyPool, simulator: bool) -> None:
    """Retry in the background while the database is down, so a process can start (and report not-ready)
    during an outage instead of crashing."""
    delay = 1.0
    while not (await _sync_keys(settings, kie, fal) and await _simulator_keys(kie, fal, simulator)):
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
    try:
        yield sim.url
    finally:
        await sim.stop()
