"""Exponential backoff with full jitter, and the loop that retries transient provider errors.

Full jitter (`uniform(0, min(cap, base * 2**attempt))`) spreads the retries of many workers that failed at the
same moment (a 455 maintenance window hits everyone at once), where plain exponential backoff would bring them
back in lock-step. The policy is data so tests can shrink it to milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from photobot.providers.errors import ProviderError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 0.5
    cap_s: float = 30.0
    max_attempts: int = 5  # total calls, the first one included

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (0-based): full jitter under an exponential ceiling."""
        return backoff_s(attempt, base_s=self.base_s, cap_s=self.cap_s, rng=rng)


def backoff_s(attempt: int, *, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Full jitter under an exponential ceiling: `uniform(0, min(cap, base * 2**attempt))` (0-based attempt).

    The one backoff rule of the service: provider calls, a job's next submit or finish attempt.
    """
    ceiling = min(cap_s, base_s * (2 ** max(attempt, 0)))
    return (rng or random).uniform(0, ceiling)


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    failover: Callable[[ProviderError], bool] | None = None,
    rotates_keys: bool = False,
) -> T:
    """Call `fn` until it succeeds, a fatal error occurs or the attempts run out (the last error is raised).

    The one retry loop of the service (createTask with key failover, status polls):
    - `failover(exc)` returning True means "another key takes the next call": it is made at once, without backoff
      (the error said something about the key, not the request);
    - an error with `max_retries` (kie's 501) is retried at most that many times even though it is not transient;
    - `retry_after` (a 429) is honoured as a lower bound on the delay, unless `rotates_keys` (each call takes the
      least recently used usable key) and the error only cooled its key down: the next key is not limited.
    """
    attempt = 0
    per_code: dict[str, int] = {}
    while True:
        try:
            return await fn()
        except ProviderError as exc:
            attempt += 1
            if failover is not None and failover(exc):
                continue
            per_code[exc.code] = per_code.get(exc.code, 0) + 1
            limit = exc.max_retries
            allowed = exc.transient if limit is None else per_code[exc.code] <= limit
            if not allowed or attempt >= policy.max_attempts:
                raise
            delay = policy.backoff(attempt - 1)
            if not (rotates_keys and exc.key_effect == "cooldown"):
                delay = max(delay, exc.retry_after or 0.0)
            log.info("provider call failed (%s), retry %d in %.2fs", exc.code, attempt, delay)
            await sleep(delay)
