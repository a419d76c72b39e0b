"""`ExpiringMap`: the one in-process cache of database rows with a time to live (client tokens, styles, provider keys).

Each entry expires `ttl_s` after it was put; a bound, when given, drops the oldest entries first. Callers decide
what may be cached (never a miss: a row created a moment ago must work at once) and how a stale entry is caught.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ExpiringMap(Generic[K, V]):
    def __init__(self, ttl_s: float, max_entries: int | None = None) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The live value for `key`, or None (absent or expired: an expired entry is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (time.monotonic() + self.ttl_s, value)
        self._entries.move_to_end(key)
        while self.max_entries is not None and len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)

    def items(self) -> Iterator[tuple[K, V]]:
        """Every entry, expired or not (for dropping entries by their value)."""
        return ((key, value) for key, (_, value) in list(self._entries.items()))

    def __len__(self) -> int:
        return len(self._entries)
