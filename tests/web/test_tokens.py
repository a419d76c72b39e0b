"""The token cache: a kiosk's requests authenticate without the database, and revocation still holds — at once in
every process through the bus (admin API), within the cache's TTL otherwise (the CLI)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from photobot.db import Database
from photobot.db.models import ClientToken
from photobot.services import access
from photobot.settings import Settings
from photobot.web.tokens import TokenCache
from tests.support.api import new_token
from tests.support.stack import Stack, open_app


async def _status(env: Stack, token: str) -> int:
    return (await env.client.get("/v1/styles", headers={"Authorization": f"Bearer {token}"})).status_code


async def test_admin_revocation_reaches_every_process_through_the_bus(
    database: Database, make_settings: Callable[..., Settings], redis_url: str
) -> None:
    async with (
        open_app(database, make_settings, redis_url=redis_url) as one,
        open_app(database, make_settings, redis_url=redis_url, reuse=one) as two,
    ):
        two.app.state.tokens.ttl_s = 3600.0  # only the bus can make the second process forget
        token_id, token = await new_token(one, "event", event_id=one.event_id)
        assert (await _status(one, token), await _status(two, token)) == (200, 200)  # both have it cached now
        revoked = await one.client.delete(f"/v1/admin/tokens/{token_id}", headers=one.admin)
        assert revoked.status_code == 200
        assert await _status(one, token) == 401  # this process forgot it at commit
        deadline = time.monotonic() + 5
        while await _status(two, token) != 401:
            assert time.monotonic() < deadline, "the other process still accepts a revoked token"
            await asyncio.sleep(0.02)


async def test_a_revocation_without_the_bus_holds_within_the_ttl(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    async with open_app(database, make_settings) as env:
        env.app.state.tokens.ttl_s = 0.3
        token_id, token = await new_token(env, "event", event_id=env.event_id)
        assert await _status(env, token) == 200
        async with database.session() as session:  # what `photobot tokens revoke` does: no bus
            await access.revoke_token(session, token_id)
        await asyncio.sleep(0.35)
        assert await _status(env, token) == 401
        # an unknown token is never cached: one created after a refusal works at once
        assert await _status(env, "pb_" + "x" * 40) == 401
        _, fresh = await new_token(env, "event", event_id=env.event_id)
        assert await _status(env, fresh) == 200


def test_the_cache_is_bounded_and_expires() -> None:
    cache = TokenCache(ttl_s=0.05, max_entries=3)
    records = [ClientToken(id=i, token_hash=f"h{i}", scope="event", event_id=1) for i in range(5)]
    for record in records:
        cache.put(record.token_hash, record)
    assert [cache.get(f"h{i}") is not None for i in range(5)] == [False, False, True, True, True]
    cache.forget(3)
    assert cache.get("h3") is None and cache.get("h4") is records[4]
    time.sleep(0.06)
    assert cache.get("h4") is None
