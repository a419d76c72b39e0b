"""Request rate limits (submissions per token, callbacks per address and per job) with slowapi.

slowapi's `Limiter` owns the storage (Redis when configured, memory otherwise) and its in-memory fallback;
we call it explicitly from the routes that need a limit, with keys we choose (a token id, a job id), instead
of decorating endpoints through a module-level global. The `limits` storage is synchronous, so every check
runs in a worker thread with short socket timeouts; when Redis fails, slowapi's fallback limiter takes over
for `RETRY_BACKEND_S` before Redis is tried again, so an outage never stalls intake or callbacks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from slowapi import Limiter
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
        options: dict[str, Any] = {}
        if redis_url:
            options = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        self._slowapi = Limiter(
            key_func=lambda request: "",
            storage_uri=redis_url or "memory://",
            storage_options=options,
            in_memory_fallback_enabled=True,
            strategy="moving-window",
            headers_enabled=False,
        )
        self._dead_until = 0.0
        self._items: dict[str, RateLimitItem] = {}

    def _item(self, limit: str) -> RateLimitItem:
        if limit not in self._items:
            self._items[limit] = parse(limit)
        return self._items[limit]

    def _hit(self, item: RateLimitItem, scope: str, key: str) -> RateDecision:
        slowapi = self._slowapi
        if slowapi._storage_dead and time.monotonic() >= self._dead_until:
            slowapi._storage_dead = False  # try the backend again
        try:
            strategy = slowapi.limiter
            allowed = strategy.hit(item, scope, key)
            stats = None if allowed else strategy.get_window_stats(item, scope, key)
        except Exception as exc:
            if slowapi._storage_dead or slowapi._fallback_limiter is None:
                raise
            log.warning("rate limit storage unavailable, using memory", extra={"error": type(exc).__name__})
            slowapi._storage_dead = True
            self._dead_until = time.monotonic() + RETRY_BACKEND_S
            return self._hit(item, scope, key)
        if allowed:
            return RateDecision(True)
        retry = max(1, math.ceil(stats.reset_time - time.time())) if stats else 1
        return RateDecision(False, retry)

    async def hit(self, limit: str, scope: str, key: str) -> RateDecision:
        """Count one hit of `key` in `scope` against `limit` (slowapi syntax, e.g. "60/minute")."""
        return await asyncio.to_thread(self._hit, self._item(limit), scope, key)


async def enforce(limiter: RequestLimiter, limit: str, scope: str, key: str, detail: str) -> None:
    """Count one hit; over the limit, the one 429 every route answers (problem+json with Retry-After)."""
    decision = await limiter.hit(limit, scope, key)
    if not decision.allowed:
        raise Problem(
            429, "rate_limited", "Too many requests", detail, headers={"Retry-After": str(decision.retry_after_s)}
        )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
