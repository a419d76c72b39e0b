"""Provider API keys (the pool the dispatcher draws from) and client tokens (who may call our API)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.bus import Bus
from photobot.db import on_commit
from photobot.db.models import ClientToken, Event, ProviderKey, TokenScope, utcnow
from photobot.services import Invalid, NotFound
from photobot.signing import generate_token, hash_token

PROVIDERS = ("kie", "fal")


async def add_key(session: AsyncSession, provider: str, secret: str, label: str | None = None) -> ProviderKey:
    if provider not in PROVIDERS:
        raise Invalid(f"provider must be one of: {', '.join(PROVIDERS)}")
    secret = secret.strip()
    if len(secret) < 8:
        raise Invalid("the key looks too short")
    existing = (
        await session.execute(
            sa.select(ProviderKey).where(col(ProviderKey.provider) == provider, col(ProviderKey.secret) == secret)
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Invalid(f"that key is already in the pool (id {existing.id})")
    key = ProviderKey(provider=provider, secret=secret, label=label)
    session.add(key)
    await session.flush()
    return key


async def list_keys(session: AsyncSession, provider: str | None = None) -> list[ProviderKey]:
    query = sa.select(ProviderKey).order_by(col(ProviderKey.id))
    if provider:
        query = query.where(col(ProviderKey.provider) == provider)
    return list((await session.execute(query)).scalars())


async def disable_key(session: AsyncSession, key_id: int, reason: str = "disabled by operator") -> ProviderKey:
    key = await session.get(ProviderKey, key_id)
    if key is None:
        raise NotFound(f"key {key_id} not found")
    key.active = False
    key.disabled_reason = reason
    await session.flush()
    return key


async def enable_key(session: AsyncSession, key_id: int) -> ProviderKey:
    key = await session.get(ProviderKey, key_id)
    if key is None:
        raise NotFound(f"key {key_id} not found")
    key.active = True
    key.disabled_reason = None
    key.cooldown_until = None
    key.failure_count = 0
    await session.flush()
    return key


async def create_token(
    session: AsyncSession, scope: str, *, event_id: int | None = None, label: str | None = None
) -> tuple[ClientToken, str]:
    """Create a token; returns the record and the token itself (shown once, never stored)."""
    if scope not in tuple(TokenScope):
        raise Invalid("scope must be event, app or admin")
    if scope == TokenScope.event:
        if event_id is None:
            raise Invalid("an event token needs --event ID")
        if await session.get(Event, event_id) is None:
            raise NotFound(f"event {event_id} not found")
    elif event_id is not None:
        raise Invalid("only event tokens are bound to an event")
    token = generate_token()
    record = ClientToken(token_hash=hash_token(token), scope=scope, event_id=event_id, label=label)
    session.add(record)
    await session.flush()
    return record, token


async def revoke_token(session: AsyncSession, token_id: int, *, bus: Bus | None = None) -> ClientToken:
    """Revoke a token. With a bus, every web process's token cache forgets it once this commits; without one (the
    CLI), caches let it go within their TTL (`web.tokens.TOKEN_CACHE_TTL_S`)."""
    record = await session.get(ClientToken, token_id)
    if record is None:
        raise NotFound(f"token {token_id} not found")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    await session.flush()
    if bus is not None:
        on_commit(session, lambda: bus.token_revoked(token_id))
    return record


async def list_tokens(session: AsyncSession) -> list[ClientToken]:
    return list((await session.execute(sa.select(ClientToken).order_by(col(ClientToken.id)))).scalars())


async def authenticate(session: AsyncSession, token: str) -> ClientToken | None:
    """The live token record for a presented bearer token, or None (unknown or revoked)."""
    record: ClientToken | None = (
        await session.execute(sa.select(ClientToken).where(col(ClientToken.token_hash) == hash_token(token)))
    ).scalar_one_or_none()
    if record is None or record.revoked_at is not None:
        return None
    return record
