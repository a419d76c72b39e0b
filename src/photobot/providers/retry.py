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
        ceiling = min(self.cap_s, self.base_s * (2**attempt))
        return (rng or random).uniform(0, ceiling)


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Call `fn` until it succeeds, a fatal error occurs or the attempts run out (the last error is raised).

    An error with `max_retries` (kie's 501) is retried at most that many times even though it is not transient;
    `retry_after` (from a 429) is honoured as a lower bound on the delay.
    """
    attempt = 0
    per_code: dict[str, int] = {}
    while True:
        try:
            return await fn()
        except ProviderError as exc:
            attempt += 1
            per_code[exc.code] = per_code.get(exc.code, 0) + 1
            limit = exc.max_retries
            allowed = exc.transient if limit is None else per_code[exc.code] <= limit
            if not allowed or attempt >= policy.max_attempts:
                raise
            delay = max(policy.backoff(attempt - 1), exc.retry_after or 0.0)
            log.info("provider call failed (%s), retry %d in %.2fs", exc.code, attempt, delay)
            await sleep(delay)
