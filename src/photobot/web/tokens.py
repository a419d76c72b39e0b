"""An in-process cache of live client tokens: authenticating a kiosk's request without a database round trip."""

from __future__ import annotations

import time
from collections import OrderedDict

from photobot.db.models import ClientToken

TOKEN_CACHE_TTL_S = 1.0


class TokenCache:
    """Live tokens seen in the last `ttl_s`, by hash, so a kiosk's requests cost no database round trip to
    authenticate. A revocation through the admin API reaches every process at once over the bus
    (`Bus.token_revoked`); one made elsewhere (the CLI, or while Redis is down) at worst after `ttl_s`. Unknown
    tokens are never cached: a token created a moment ago works at once. Bounded: the oldest entries go first."""

    def __init__(self, ttl_s: float = TOKEN_CACHE_TTL_S, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: OrderedDict[str, tuple[float, ClientToken]] = OrderedDict()

    def get(self, token_hash: str) -> ClientToken | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[token_hash]
            return None
        return entry[1]

    def put(self, token_hash: str, record: ClientToken) -> None:
        self._entries[token_hash] = (time.monotonic() + self.ttl_s, record)
        self._entries.move_to_end(token_hash)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, token_id: int) -> None:
        for key in [k for k, (_, record) in self._entries.items() if record.id == token_id]:
            del self._entries[key]
