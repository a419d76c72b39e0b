"""Outbound webhook endpoints and their deliveries, for `photobot webhooks …` and `/v1/admin/webhooks` alike.

An endpoint's secret is shown exactly twice in its life: when it is added and when it is rotated; lists and
other answers never carry it. Rotation keeps the previous secret signing (a second `v1,` signature) for
`PHOTOBOT_WEBHOOK_SECRET_OVERLAP_S`, so receivers can switch without losing a message. Endpoints are disabled,
never deleted (their deliveries stay readable); `enable` clears the failing streak. `replay` sends a message
again, with its original `webhook-id`, to every active endpoint that had it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.db import execute_dml
from photobot.db.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage, utcnow
from photobot.net.errors import FetchError
from photobot.outbound.endpoints import TypesRefused, check_endpoint_url, parse_types
from photobot.services import Invalid, NotFound
from photobot.services.operations import WrongState
from photobot.settings import Settings
from photobot.signing import generate_webhook_secret

MAX_OVERLAP_S = 30 * 86400
MAX_DESCRIPTION = 200


class EndpointRefused(Invalid):
    """The URL may not be an endpoint; `code` is the fetcher's (`url_not_allowed`, `address_not_allowed`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def endpoint_view(
    endpoint: WebhookEndpoint, *, secret: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """An endpoint as operators see it; `secret` only in the answer that created it (add, rotate-secret)."""
    until = endpoint.old_secret_until
    rotating = endpoint.old_secret is not None and until is not None and until > (now or utcnow())
    view: dict[str, Any] = {
        "id": endpoint.id, "url": endpoint.url, "types": list(endpoint.types), "event_id": endpoint.event_id,
        "description": endpoint.description, "active": endpoint.active, "disabled_reason": endpoint.disabled_reason,
        "failing_since": _iso(endpoint.failing_since),
        "old_secret_until": _iso(endpoint.old_secret_until) if rotating else None,
        "created_at": _iso(endpoint.created_at),
    }  # fmt: skip
    if secret is not None:
        view["secret"] = secret
    return view


async def add_endpoint(
    session: AsyncSession, settings: Settings, url: str, *, event_id: int | None = None,
    types: list[str] | str | None = None, description: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A new active endpoint with a new secret; the answer is the only place the secret appears."""
    try:
        url = check_endpoint_url(url, allow_private=settings.allow_private_networks)
        chosen = parse_types(types)
    except FetchError as exc:
        raise EndpointRefused(exc.code, exc.message) from None
    except TypesRefused as exc:
        raise Invalid(str(exc)) from None
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise Invalid(f"description must be at most {MAX_DESCRIPTION} characters")
    if event_id is not None and await session.get(Event, event_id) is None:
        raise NotFound(f"event {event_id} not found")
    secret = generate_webhook_secret()
    now = utcnow()
    endpoint = WebhookEndpoint(
        url=url, secret=secret, types=chosen, event_id=event_id, description=description or None,
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(endpoint)
    await session.flush()
    return endpoint_view(endpoint, secret=secret, now=now)


async def list_endpoints(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(sa.select(WebhookEndpoint).order_by(col(WebhookEndpoint.id)))
    now = utcnow()
    return [endpoint_view(e, now=now) for e in rows.scalars()]


async def _endpoint(session: AsyncSession, endpoint_id: int) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


async def disable_endpoint(session: AsyncSession, endpoint_id: int) -> dict[str, Any]:
    """Stop sending to the endpoint; its pending deliveries end as failed when next due (replay sends them again)."""
    endpoint = await _endpoint(session, endpoint_id)
    if endpoint.active:
        endpoint.active, endpoint.disabled_reason, endpoint.updated_at = False, "disabled by the operator", utcnow()
        await session.flush()
    return endpoint_view(endpoint)


async def enable_endpoint(session: AsyncSession, endpoint_id: int) -> dict[str, Any]:
    """Send to the endpoint again, starting a fresh failing streak (its missed messages need a replay)."""
    endpoint = await _endpoint(session, endpoint_id)
    endpoint.active, endpoint.disabled_reason, endpoint.failing_since = True, None, None
    endpoint.alert_pending, endpoint.updated_at = False, utcnow()
    await session.flush()
    return endpoint_view(endpoint)


async def rotate_secret(
    session: AsyncSession, settings: Settings, endpoint_id: int, *, overlap_s: int | None = None
) -> dict[str, Any]:
    """A new secret signs from now on; the current one keeps signing too for `overlap_s` seconds (the setting
    `PHOTOBOT_WEBHOOK_SECRET_OVERLAP_S` by default; 0 ends it at once). Returns the view with the new secret."""
    overlap = settings.webhook_secret_overlap_s if overlap_s is None else overlap_s
    if not 0 <= overlap <= MAX_OVERLAP_S:
        raise Invalid(f"overlap must be 0 to {MAX_OVERLAP_S} seconds")
    endpoint = await _endpoint(session, endpoint_id)
    now = utcnow()
    secret = generate_webhook_secret()
    endpoint.old_secret = endpoint.secret if overlap else None
    endpoint.old_secret_until = now + timedelta(seconds=overlap) if overlap else None
    endpoint.secret, endpoint.updated_at = secret, now
    await session.flush()
    return endpoint_view(endpoint, secret=secret, now=now)


def _delivery_view(
    delivery: WebhookDelivery, message: WebhookMessage, attempts: list[WebhookAttempt]
) -> dict[str, Any]:
    return {
        "message_id": message.id, "type": message.type, "created_at": _iso(message.created_at),
        "endpoint_id": delivery.endpoint_id, "state": delivery.state, "attempts": len(attempts),
        "last_status": delivery.last_status, "last_error": delivery.last_error,
        "next_attempt_at": _iso(delivery.next_attempt_at) if delivery.state == "pending" else None,
        "delivered_at": _iso(delivery.delivered_at),
        "history": [{"at": _iso(a.at), "status": a.status_code, "error": a.error, "duration_ms": a.duration_ms}
                    for a in attempts],
    }  # fmt: skip


async def _views(session: AsyncSession, where: Any, limit: int) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            sa.select(WebhookDelivery, WebhookMessage)
            .join(WebhookMessage, col(WebhookMessage.id) == col(WebhookDelivery.message_id))
            .where(where)
            .order_by(col(WebhookDelivery.id).desc())
            .limit(limit)
        )
    ).all()
    ids = [delivery.id for delivery, _ in rows]
    history: dict[int, list[WebhookAttempt]] = {i: [] for i in ids if i is not None}
    if ids:
        attempts = await session.execute(
            sa.select(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(ids)).order_by(col(WebhookAttempt.id))
        )
        for attempt in attempts.scalars():
            history[attempt.delivery_id].append(attempt)
    return [_delivery_view(d, m, history.get(d.id or 0, [])) for d, m in rows]


async def deliveries(session: AsyncSession, endpoint_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    """The endpoint's latest messages (newest first), each with every attempt's time, status and error."""
    if not 1 <= limit <= 1000:
        raise Invalid("limit must be 1 to 1000")
    await _endpoint(session, endpoint_id)
    return await _views(session, col(WebhookDelivery.endpoint_id) == endpoint_id, limit)


async def replay(session: AsyncSession, message_id: str) -> list[dict[str, Any]]:
    """Send a message again, with its original `webhook-id`, to every active endpoint that had it: each delivery
    becomes due now with a fresh retry schedule (one still being sent is left to finish)."""
    if await session.get(WebhookMessage, message_id.strip()) is None:
        raise NotFound(f"webhook message {message_id} not found")
    now = utcnow()
    active = sa.select(col(WebhookEndpoint.id)).where(col(WebhookEndpoint.active).is_(True))
    idle = sa.or_(
        col(WebhookDelivery.state) != "sending",
        col(WebhookDelivery.lease_until).is_(None),
        col(WebhookDelivery.lease_until) < now,
    )
    mine = sa.and_(col(WebhookDelivery.message_id) == message_id, col(WebhookDelivery.endpoint_id).in_(active))
    changed = await execute_dml(
        session,
        sa.update(WebhookDelivery)
        .where(mine, idle)
        .values(state="pending", attempts=0, next_attempt_at=now, lease_until=None, delivered_at=None),
    )
    if not changed:
        raise WrongState(f"message {message_id} has no delivery to an active endpoint that is not being sent now")
    return await _views(session, mine, 1000)
