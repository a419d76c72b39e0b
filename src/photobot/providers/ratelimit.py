"""Outbound rate limit per API key: never send kie.ai a request it would answer with 429.

kie.ai allows 20 createTask calls per 10 s per account. A plain sliding window over *send* times is not enough
to guarantee zero 429s: the provider counts *arrival* times, and a request that sat in a socket buffer can
arrive later than one sent after it. So every slot is held for the duration of the call:

- `acquire` records the slot with a score in the future (now + lease): an in-flight call always counts;
- `release` moves the score to the completion time, an upper bound of when the provider saw the request;
- a new call may start only while fewer than `limit` slots have a score inside the last `window` seconds.

For any new request sent at `s` (arriving at `a ≥ s`), every earlier request that arrived after `a - window`
completed after `s - window`, so it is counted: the provider never sees more than `limit` per window.

`RedisRateLimiter` keeps the window in a sorted set per key, updated by one Lua script using Redis' own clock,
so every worker on every machine shares it; if Redis errors, it falls back to the in-process limiter (logged
once) so a Redis outage slows nothing down except cross-worker fairness. `MemoryRateLimiter` is the same
algorithm for a single process without Redis. Callers wait (`asyncio.sleep`) for a slot: a burst is smoothed,
never rejected.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger(__name__)

_POLL_S = 0.02  # how often to look again while every slot is held by an in-flight call
_LEASE_S = 120.0  # an in-flight slot left by a crashed worker expires after lease + window


class MemoryRateLimiter:
    """The sliding window with held slots, for one process."""

    def __init__(self, limit: int, window_s: float, *, lease_s: float = _LEASE_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self.lease_s = lease_s
        self._slots: dict[str, dict[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, bucket: str) -> AsyncIterator[None]:
        """Wait for a slot, run the body (the provider call), then release the slot at completion time."""
        token = await self.acquire(bucket)
        try:
            yield
        finally:
            await self.release(bucket, token)

    async def acquire(self, bucket: str) -> str:
        """Wait for a slot in `bucket`; returns the token to release.

        Waiters of one process queue on a local lock per bucket, so they are served in order and only the head
        of the queue asks Redis (no thundering herd when a slot frees up).
        """
        token = uuid.uuid4().hex
        lock = self._locks.setdefault(bucket, asyncio.Lock())
        async with lock:
            while True:
                wait = await self._attempt(bucket, token)
                if wait <= 0:
                    return token
                await asyncio.sleep(wait)  # the wait is computed from the window, not a blind poll

    async def release(self, bucket: str, token: str) -> None:
        self.release_now(bucket, token)

    def release_now(self, bucket: str, token: str) -> None:
        slots = self._slots.get(bucket)
        if slots is not None and token in slots:
            slots[token] = time.monotonic()

    async def _attempt(self, bucket: str, token: str) -> float:
        return self.attempt_now(bucket, token)

    def attempt_now(self, bucket: str, token: str) -> float:
        """Take a slot (return 0) or return how long to wait before trying again."""
        now = time.monotonic()
        slots = self._slots.setdefault(bucket, {})
        for tok, score in list(slots.items()):
            if score <= now - self.window_s:
                del slots[tok]
        if len(slots) < self.limit:
            slots[token] = now + self.lease_s
            return 0.0
        scores = sorted(slots.values())
        kth = scores[len(scores) - self.limit]
        if kth > now:
            return min(_POLL_S, self.window_s)
        return max(kth + self.window_s - now, 0.001)


_ACQUIRE_LUA = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local token = ARGV[4]
local poll = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now + lease, token)
  redis.call('PEXPIRE', key, math.ceil((window + lease) * 1000))
  return '0'
end
local kth = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
local score = tonumber(kth[2])
if score > now then
  return tostring(poll)
end
return tostring(math.max(score + window - now, 0.001))
"""

_RELEASE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
return 1
"""


class RedisRateLimiter(MemoryRateLimiter):
    """The same window in a Redis sorted set shared by every worker; memory fallback when Redis fails."""

    def __init__(
        self,
        redis: Any,
        limit: int,
        window_s: float,
        *,
        prefix: str = "photobot:ratelimit:",
        lease_s: float = _LEASE_S,
        timeout_s: float = 0.5,
    ) -> None:
        super().__init__(limit, window_s, lease_s=lease_s)
        self.redis = redis
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._acquire_script = redis.register_script(_ACQUIRE_LUA)
        self._release_script = redis.register_script(_RELEASE_LUA)
        self._degraded = False
        self._in_memory: set[str] = set()  # tokens taken from the fallback, released there too

    async def _attempt(self, bucket: str, token: str) -> float:
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await self._acquire_script(
                    keys=[self.prefix + bucket],
                    args=[self.limit, self.window_s, self.lease_s, token, min(_POLL_S, self.window_s)],
                )
        except Exception as exc:  # redis errors, timeouts, connection refused: degrade, never block
            if not self._degraded:
                log.warning("rate limiter: Redis unavailable (%s), falling back to memory", type(exc).__name__)
                self._degraded = True
            wait = self.attempt_now(bucket, token)
            if wait == 0:
                self._in_memory.add(token)
            return wait
        if self._degraded:
            log.info("rate limiter: Redis is back")
            self._degraded = False
        return float(result.decode() if isinstance(result, bytes) else result)

    async def release(self, bucket: str, token: str) -> None:
        if token in self._in_memory:
            self._in_memory.discard(token)
            self.release_now(bucket, token)
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._release_script(keys=[self.prefix + bucket], args=[token])
        except Exception as exc:  # the slot then expires after its lease; log and go on
            log.warning("rate limiter: could not release a slot (%s)", type(exc).__name__)


RateLimiter = MemoryRateLimiter  # the interface: hold(bucket) / acquire(bucket) + release(bucket, token)
