"""Request rate limits (submissions and purchases per token, callbacks per address and per job) on `limits`' async
API.

Two stores, chosen per limit:
- **shared** limits (per token, per job) live in Redis when configured, so every web process counts together:
  one EVALSHA on the event loop per hit, never a thread;
- **local** limits (per client address) live in this process's memory: they stop one noisy address from
  flooding this process, cost no round trip, and a balancer spreading an address over N processes only makes
  the limit N times looser.

When Redis fails, shared limits fall back to memory for `RETRY_BACKEND_S` before Redis is tried again, so an
outage never stalls intake or callbacks. slowapi (built on the same `limits`) is not used any more: its storage is
synchronous, which cost two thread hops per callback (see docs/design-notes.md for the numbers).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from photobot.problems import Problem

log = logging.getLogger(__name__)

RETRY_BACKEND_S = 10.0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: int = 0


class RequestLimiter:
    def __init__(self, redis_url: str | None, *, timeout_s: float = 0.25) -> None:
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared: MovingWindowRateLimiter | None = None
        if redis_url:
            storage = RedisStorage(
                "async+" + redis_url, implementation="redispy", socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
            )  # fmt: skip
            self._shared = MovingWindowRateLimiter(storage)
        self._dead_until = 0.0
        self._items: dict[str, RateLimitItem] = {}

    def _item(self, limit: str) -> RateLimitItem:
        if limit not in self._items:
            self._items[limit] = parse(limit)
        return self._items[limit]

    async def hit(self, limit: str, scope: str, key: str, *, shared: bool = True) -> RateDecision:
        """Count one hit of `key` in `scope` against `limit` (e.g. "60/minute"); `shared=False` counts in this
        process only."""
        item = self._item(limit)
        strategy = self._local
        if shared and self._shared is not None and time.monotonic() >= self._dead_until:
            try:
                return await self._decide(self._shared, item, scope, key)
            except Exception as exc:
                log.warning("rate limit storage unavailable, using memory", extra={"error": type(exc).__name__})
                self._dead_until = time.monotonic() + RETRY_BACKEND_S
        return await self._decide(strategy, item, scope, key)

    @staticmethod
    async def _decide(strategy: MovingWindowRateLimiter, item: RateLimitItem, scope: str, key: str) -> RateDecision:
        if await strategy.hit(item, scope, key):
            return RateDecision(True)
        stats = await strategy.get_window_stats(item, scope, key)
        return RateDecision(False, max(1, math.ceil(stats.reset_time - time.time())))


async def enforce(
    limiter: RequestLimiter, limit: str, scope: str, key: str, detail: str, *, shared: bool = True
) -> None:
    """Count one hit; over the limit, the one 429 every route answers (problem+json with Retry-After)."""
    decision = await limiter.hit(limit, scope, key, shared=shared)
    if not decision.allowed:
        raise Problem(
            429, "rate_limited", "Too many requests", detail, headers={"Retry-After": str(decision.retry_after_s)}
        )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
