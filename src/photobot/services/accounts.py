"""Events (B2B: a booth at a party spends the event's credits) and users (B2C: an app user's credits)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.db.models import Event, Moderation, User
from photobot.jobs import credits
from photobot.services import Invalid, NotFound
from photobot.services.styles import check_style_ids

MAX_GUEST_CAP = 10_000
MAX_RETENTION_DAYS = 3650
EVENT_EDITABLE = {
    "name",
    "title",
    "logo_url",
    "primary_color",
    "footer_text",
    "language",
    "notify_urls",
    "alert_urls",
    "notify_on_failure",
    "templates",
    "consent_required",
    "consent_text",
    "moderation",
    "max_photos_per_guest",
    "retention_days",
    "styles",
}


def _check_fields(fields: dict[str, Any]) -> None:
    """The rules the admin API's schema also states, for every caller (the CLI passes plain values)."""
    unknown = set(fields) - EVENT_EDITABLE
    if unknown:
        raise Invalid(f"unknown event fields: {', '.join(sorted(unknown))}")
    if "moderation" in fields and fields["moderation"] not in tuple(Moderation):
        raise Invalid("moderation must be auto or approve")
    cap = fields.get("max_photos_per_guest")
    if cap is not None and not 1 <= cap <= MAX_GUEST_CAP:
        raise Invalid(f"max_photos_per_guest must be 1 to {MAX_GUEST_CAP}, or none for no cap")
    days = fields.get("retention_days")
    if days is not None and not 1 <= days <= MAX_RETENTION_DAYS:
        raise Invalid(f"retention_days must be 1 to {MAX_RETENTION_DAYS}, or none for the default")
    text = fields.get("consent_text")
    if text is not None and len(text) > 1000:
        raise Invalid("consent_text must be at most 1000 characters")


async def create_event(session: AsyncSession, name: str, credits_: int = 0, **fields: Any) -> Event:
    if credits_ < 0:
        raise Invalid("credits must be 0 or more")
    if not name.strip():
        raise Invalid("name must not be empty")
    _check_fields(fields)
    if "styles" in fields:
        fields["styles"] = await check_style_ids(session, list(fields["styles"]))
    event = Event(name=name.strip(), **fields)
    session.add(event)
    await session.flush()
    if credits_:
        assert event.id is not None
        await credits.grant(session, event_id=event.id, amount=credits_, note="initial")
        await session.refresh(event)
    return event


async def get_event(session: AsyncSession, event_id: int) -> Event:
    event = await session.get(Event, event_id)
    if event is None:
        raise NotFound(f"event {event_id} not found")
    return event


async def list_events(session: AsyncSession) -> list[Event]:
    return list((await session.execute(sa.select(Event).order_by(col(Event.id)))).scalars())


async def update_event(session: AsyncSession, event_id: int, **fields: Any) -> Event:
    _check_fields(fields)
    if "name" in fields and not str(fields["name"]).strip():
        raise Invalid("name must not be empty")
    event = await get_event(session, event_id)
    if "styles" in fields:
        fields["styles"] = await check_style_ids(session, list(fields["styles"]))
    for name, value in fields.items():
        setattr(event, name, value)
    await session.flush()
    return event


async def add_event_credits(session: AsyncSession, event_id: int, amount: int) -> Event:
    if amount <= 0:
        raise Invalid("--add must be a positive number")
    await get_event(session, event_id)
    await credits.grant(session, event_id=event_id, amount=amount, note="top-up")
    event = await get_event(session, event_id)
    await session.refresh(event)
    return event


async def create_user(session: AsyncSession, external_id: str, credits_: int = 0) -> User:
    if credits_ < 0:
        raise Invalid("credits must be 0 or more")
    if not external_id.strip():
        raise Invalid("external id must not be empty")
    existing = (await session.execute(sa.select(User).where(col(User.external_id) == external_id))).scalar_one_or_none()
    if existing is not None:
        raise Invalid(f"user {external_id!r} already exists (id {existing.id})")
    user = User(external_id=external_id.strip())
    session.add(user)
    await session.flush()
    if credits_:
        assert user.id is not None
        await credits.grant(session, user_id=user.id, amount=credits_, note="initial")
        await session.refresh(user)
    return user


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.execute(sa.select(User).order_by(col(User.id)))).scalars())


async def add_user_credits(session: AsyncSession, user_id: int, amount: int) -> User:
    if amount <= 0:
        raise Invalid("--add must be a positive number")
    await get_user(session, user_id)
    await credits.grant(session, user_id=user_id, amount=amount, note="top-up")
    user = await get_user(session, user_id)
    await session.refresh(user)
    return user
