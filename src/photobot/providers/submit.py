"""Submitting a job: adapter + key pool + rate limiter + retries, composed in one place.

This is the call the dispatcher makes (`Submitter.submit`). For each attempt it takes the least recently used
usable key, waits for a rate-limit slot of that key, and calls the adapter once. Then:

- success → the key's failure count is reset; the task id and the key id are returned for the job row;
- the error says something about the key (401 disable, 402/433 exhausted) → the pool records it and the job is
  retried at once on another key (the job is not at fault);
- 429 → the key cools down and the next attempt takes another key after a short backoff;
- transient (455, 500, 408, network) → backoff with full jitter, up to `policy.max_attempts` calls;
- 501 → at most one retry; other fatal errors (422, 505, validation) are raised at once;
- no usable key → `NoKeyAvailable(retry_at)` is raised: the dispatcher parks the job until then.

A createTask that timed out may still have created a task; a retry then creates a second one. That is accepted:
the callback token carries the job id and the job's conditional updates make the extra result a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from photobot import metrics
from photobot.providers.base import GenerationRequest, Provider, SubmitResult, TaskStatus
from photobot.providers.errors import NoKeyAvailable, ProviderError
from photobot.providers.keypool import KeyPool, PoolKey
from photobot.providers.ratelimit import MemoryRateLimiter
from photobot.providers.retry import RetryPolicy, call_with_retries

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Submission:
    result: SubmitResult
    key_id: int
    attempts: int


class Submitter:
    def __init__(
        self,
        provider: Provider,
        pool: KeyPool,
        limiter: MemoryRateLimiter,
        policy: RetryPolicy | None = None,
        *,
        max_key_failovers: int = 10,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.pool = pool
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.max_key_failovers = max_key_failovers
        self.sleep = sleep
        self.provider_name = str(getattr(provider, "name", "unknown"))  # metrics label

    async def submit(self, req: GenerationRequest, *, key: PoolKey | None = None) -> Submission:
        """Create the provider task for `req`; ProviderError (incl. NoKeyAvailable) when it cannot be done now.

        `key`: the key this job's submit step already took (to upload its input through the provider's API). The
        first attempt uses it, so a job takes one key from the pool, not one for the upload and another for
        createTask (with two keys, that sent every createTask to the same one); a failover takes another."""
        bad_keys: set[int] = set()
        used: list[PoolKey] = []
        first = key

        async def attempt() -> SubmitResult:
            nonlocal first
            key = first if first is not None and first.id not in bad_keys else await self.pool.acquire(exclude=bad_keys)
            first = None
            used.append(key)
            try:
                async with self.limiter.hold(key.bucket):
                    call = self.provider.submit(req, key.secret)
                    return await metrics.timed_provider_call(self.provider_name, "submit", call)
            except ProviderError as exc:
                await self.pool.report_failure(key, exc)
                raise

        def failover(exc: ProviderError) -> bool:
            if isinstance(exc, NoKeyAvailable):
                raise exc  # no usable key at all: the job waits, no retry can help now
            if exc.key_effect not in ("disable", "exhausted"):
                return False
            bad_keys.add(used[-1].id)
            if len(bad_keys) > self.max_key_failovers:
                raise exc
            log.info("submit: %s on %s, failing over to another key", exc.code, used[-1])
            return True

        result = await call_with_retries(attempt, self.policy, sleep=self.sleep, failover=failover, rotates_keys=True)
        await self.pool.report_success(used[-1])
        return Submission(result, used[-1].id, len(used))

    async def fetch_status(self, task_id: str, meta: Mapping[str, Any], key_id: int | None) -> TaskStatus:
        """Poll a task with the key that created it (kie tasks belong to an account), retrying transient errors."""
        key = await self.pool.get(key_id) if key_id is not None else None
        key = key or await self.pool.acquire()
        return await self._with_key(key, lambda secret: self.provider.fetch_status(task_id, meta, secret))

    async def _with_key(self, key: PoolKey, fn: Callable[[str], Awaitable[TaskStatus]]) -> TaskStatus:
        timed = lambda: metrics.timed_provider_call(self.provider_name, "status", fn(key.secret))  # noqa: E731
        return await call_with_retries(timed, self.policy, sleep=self.sleep)
