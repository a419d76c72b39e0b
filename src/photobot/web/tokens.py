"""An in-process cache of live client tokens: authenticating a kiosk's request without a database round trip."""

from __future__ import annotations

from photobot.db.models import ClientToken
from photobot.expiring import ExpiringMap

TOKEN_CACHE_TTL_S = 1.0


class TokenCache:
    """Live tokens seen in the last `ttl_s`, by hash, so a kiosk's requests cost no database round trip to
    authenticate. A revocation through the admin API reaches every process at once over the bus
    (`Bus.token_revoked`); one made elsewhere (the CLI, or while Redis is down) at worst after `ttl_s`. Unknown
    tokens are never cached: a token created a moment ago works at once. Bounded: the oldest entries go first."""

    def __init__(self, ttl_s: float = TOKEN_CACHE_TTL_S, max_entries: int = 10_000) -> None:
        self._entries: ExpiringMap[str, ClientToken] = ExpiringMap(ttl_s, max_entries)

    @property
    def ttl_s(self) -> float:
        return self._entries.ttl_s

    @ttl_s.setter
    def ttl_s(self, value: float) -> None:
        self._entries.ttl_s = value

    def get(self, token_hash: str) -> ClientToken | None:
        return self._entries.get(token_hash)

    def put(self, token_hash: str, record: ClientToken) -> None:
        self._entries.put(token_hash, record)

    def forget(self, token_id: int) -> None:
        for key in [k for k, record in self._entries.items() if record.id == token_id]:
            self._entries.pop(key)
