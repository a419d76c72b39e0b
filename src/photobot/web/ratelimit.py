"""Request rate limits (submissions and purchases per token, callbacks per address and per job): moving windows,
counted in this process's memory or shared through Redis (`limits`' async API).

Two stores, chosen per limit:
- **shared** limits (per token, per job) live in Redis when configured, so every web process counts together:
  one EVALSHA on the event loop per hit, never a thread;
- **local** limits (per client address) live in this process's memory (`MemoryWindows`): they stop one noisy
  address from flooding this process, cost no round trip, and a balancer spreading an address over N processes
  only makes the limit N times looser.

A shared limit may be **deferred** (`defer_first=True`, the per-job callback limit): the first hit of a key in
this process within the window is allowed without asking Redis and is counted there together with the key's next
hit in this process, if one comes. A job normally gets one callback, so the common case costs no round trip,
while a flood for one job is counted in Redis from its second request in each process on: with N web processes
at most N hits beyond the limit pass in a window (each process's last, unreported, first hit).

When Redis fails, shared limits fall back to memory for `RETRY_BACKEND_S` before Redis is tried again, so an
outage never stalls intake or callbacks. slowapi (built on the same `limits`) is not used any more: its storage is
synchronous, which cost two thread hops per callback; `limits`' own memory storage is not used either: it starts
an expiry task with a thread hop for every key on each hit and inserts at the front of a list (docs/design-notes.md
has the numbers).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from photobot.problems import Problem

log = logging.getLogger(__name__)

RETRY_BACKEND_S = 10.0
SWEEP_EVERY_S = 10.0  # forget keys whose window has emptied (memory stays bounded by the keys active lately)
MAX_DEFERRED = 10_000  # keys remembered per deferred limit; the least recent go first (a looser limit, no more)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: int = 0


class MemoryWindows:
    """Moving windows in process memory: per (limit, scope, key) the times of the hits of the last window, oldest
    first, so a hit is O(1) amortised (expired hits leave from the left) with no task and no thread."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str, str], tuple[float, deque[float]]] = {}
        self._next_sweep = time.monotonic() + SWEEP_EVERY_S

    def hit(self, item: RateLimitItem, limit: str, scope: str, key: str, *, cost: int = 1) -> RateDecision:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        expiry = float(item.get_expiry())
        entry = self._hits.get((limit, scope, key))
        if entry is None:
            entry = self._hits[(limit, scope, key)] = (expiry, deque())
        hits = entry[1]
        cutoff = now - expiry
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if len(hits) + cost > item.amount:
            # the window frees a slot when its oldest hit leaves it
            oldest = hits[0] if hits else now
            return RateDecision(False, max(1, math.ceil(oldest + expiry - now)))
        hits.extend([now] * cost)
        return RateDecision(True)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_EVERY_S
        for name in [n for n, (expiry, hits) in self._hits.items() if not hits or hits[-1] <= now - expiry]:
            del self._hits[name]


class RequestLimiter:
    def __init__(self, redis_url: str | None, *, timeout_s: float = 0.25) -> None:
        self._local = MemoryWindows()
        self._shared: MovingWindowRateLimiter | None = None
        if redis_url:
            storage = RedisStorage(
                "async+" + redis_url, implementation="redispy", socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
            )  # fmt: skip
            self._shared = MovingWindowRateLimiter(storage)
        self._dead_until = 0.0
        self._items: dict[str, RateLimitItem] = {}
        # deferred limits: (limit, scope) -> key -> when its last hit came, least recent first
        self._deferred: dict[tuple[str, str], dict[str, float]] = {}
        self._next_sweep = time.monotonic() + SWEEP_EVERY_S

    def _item(self, limit: str) -> RateLimitItem:
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = parse(limit)
        return item

    async def hit(
        self, limit: str, scope: str, key: str, *, shared: bool = True, defer_first: bool = False
    ) -> RateDecision:
        """Count one hit of `key` in `scope` against `limit` (e.g. "60/minute"); `shared=False` counts in this
        process only; `defer_first` lets the first hit of a key in this process pass without a round trip (it is
        counted in Redis with the next one; see the module docstring)."""
        item = self._item(limit)
        if shared and self._shared is not None and time.monotonic() >= self._dead_until:
            cost = 1
            if defer_first:
                deferred = self._defer(item, limit, scope, key)
                if deferred is None:
                    return RateDecision(True)
                cost += deferred
            try:
                return await self._decide(self._shared, item, scope, key, cost)
            except Exception as exc:
                log.warning("rate limit storage unavailable, using memory", extra={"error": type(exc).__name__})
                self._dead_until = time.monotonic() + RETRY_BACKEND_S
        return self._local.hit(item, limit, scope, key)

    def _defer(self, item: RateLimitItem, limit: str, scope: str, key: str) -> int | None:
        """None: this is the key's first hit in this process within the window, allowed and remembered. Otherwise
        how many remembered hits the next shared hit must count besides itself (0 or 1)."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep_deferred(now)
        keys = self._deferred.get((limit, scope))
        if keys is None:
            keys = self._deferred[(limit, scope)] = {}
        last = keys.pop(key, None)  # > 0: a first hit not yet reported; < 0: hits are being reported
        if last is None or abs(last) <= now - item.get_expiry():  # nothing of this key in the window
            if len(keys) >= MAX_DEFERRED:
                del keys[next(iter(keys))]  # the least recent key
            keys[key] = now
            return None
        # a later hit: report it (with the first one when that is still unreported); the key's hits are then
        # reported as they come until a window passes without one
        keys[key] = -now
        return 1 if last > 0 else 0

    def _sweep_deferred(self, now: float) -> None:
        self._next_sweep = now + SWEEP_EVERY_S
        for (limit, _), keys in self._deferred.items():
            cutoff = now - self._item(limit).get_expiry()
            for key in [k for k, at in keys.items() if abs(at) <= cutoff]:
                del keys[key]

    @staticmethod
    async def _decide(
        strategy: MovingWindowRateLimiter, item: RateLimitItem, scope: str, key: str, cost: int
    ) -> RateDecision:
        if await strategy.hit(item, scope, key, cost=cost):
            return RateDecision(True)
        stats = await strategy.get_window_stats(item, scope, key)
        return RateDecision(False, max(1, math.ceil(stats.reset_time - time.time())))


async def enforce(
    limiter: RequestLimiter,
    limit: str,
    scope: str,
    key: str,
    detail: str,
    *,
    shared: bool = True,
    defer_first: bool = False,
) -> None:
    """Count one hit; over the limit, the one 429 every route answers (problem+json with Retry-After)."""
    decision = await limiter.hit(limit, scope, key, shared=shared, defer_first=defer_first)
    if not decision.allowed:
        raise Problem(
            429, "rate_limited", "Too many requests", detail, headers={"Retry-After": str(decision.retry_after_s)}
        )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
