"""The simulator's memory: tasks, stored files, per-key windows and balances, counters, background work."""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from photobot.providers.simulator.config import SimConfig


@dataclass
class Stats:
    create_calls: Counter[str] = field(default_factory=Counter)  # per key, every createTask that passed auth
    tasks_created: int = 0
    rate_limited: int = 0  # 429 answers sent (real limit and bursts)
    callbacks_sent: int = 0
    callbacks_dropped: int = 0
    callbacks_failed: int = 0  # the receiver did not answer 2xx or could not be reached
    record_calls: int = 0
    credit_calls: int = 0
    uploads: int = 0
    fal_submits: int = 0
    fal_webhooks_sent: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "create_calls": dict(self.create_calls),
            "create_calls_total": sum(self.create_calls.values()),
            "tasks_created": self.tasks_created,
            "rate_limited": self.rate_limited,
            "callbacks_sent": self.callbacks_sent,
            "callbacks_dropped": self.callbacks_dropped,
            "callbacks_failed": self.callbacks_failed,
            "record_calls": self.record_calls,
            "credit_calls": self.credit_calls,
            "uploads": self.uploads,
            "fal_submits": self.fal_submits,
            "fal_webhooks_sent": self.fal_webhooks_sent,
        }


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.initial = copy.deepcopy(config)  # /_sim/reset goes back to these values
        self.config = config
        self.stats = Stats()
        self.tasks: dict[str, dict[str, Any]] = {}
        self.fal_requests: dict[str, dict[str, Any]] = {}
        self.files: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self.windows: dict[str, deque[float]] = {}
        self.balances: dict[str, float] = {}
        self.background: set[asyncio.Task[None]] = set()
        self.http: httpx.AsyncClient | None = None
        self.base_url: str | None = None  # set by the runner; else taken from each request
        self.fal_signing_key = Ed25519PrivateKey.generate()

    def reset(self) -> None:
        for task in self.background:
            task.cancel()
        self.config.__dict__.update(copy.deepcopy(self.initial).__dict__)
        self.stats = Stats()
        self.tasks.clear()
        self.fal_requests.clear()
        self.windows.clear()
        self.balances.clear()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def store_file(self, name: str, data: bytes, content_type: str) -> None:
        self.files[name] = (data, content_type)
        while len(self.files) > self.config.max_files:
            self.files.popitem(last=False)

    def rate_ok(self, key: str) -> bool:
        """The provider's own limit: at most rate_limit accepted calls per window, by arrival time."""
        now = time.monotonic()
        window = self.windows.setdefault(key, deque())
        while window and window[0] <= now - self.config.rate_window_s:
            window.popleft()
        if len(window) >= self.config.rate_limit:
            return False
        window.append(now)
        return True

    def balance(self, key: str) -> float:
        return self.balances.setdefault(key, self.config.credits)
