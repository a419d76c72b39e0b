"""The outbox: webhook messages are rows written in the same transaction as the change they announce.

`publish` is called by the single owner of each change, inside its transaction:
- `jobs/outcomes.py` (`job.completed`, `job.failed`) for every way a job ends;
- `notify/alerts.py` (`credits.low`) when a settle takes an event's balance across a threshold;
- `payments/purchases.py` (`purchase.approved`) when a payment is applied and its credits granted.
If that transaction commits, the message and its deliveries exist and the worker's sender will deliver them,
whatever crashes afterwards; if it rolls back, they never existed. Only endpoints that hear the message get a
delivery row (active, the type subscribed, and the same event or no event filter); with no such endpoint
nothing is written at all, so the cost on a job's completion is one small SELECT (none of its own on PostgreSQL,
where the completing statement reads the endpoints with the job: `listening`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.bus import Bus
from photobot.db import on_commit
from photobot.db.models import (
    Job,
    JobState,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    new_message_id,
    table_of,
    utcnow,
)
from photobot.links import page_url

JOB_COMPLETED = "job.completed"
JOB_FAILED = "job.failed"
CREDITS_LOW = "credits.low"
PURCHASE_APPROVED = "purchase.approved"
EVENT_TYPES = (JOB_COMPLETED, JOB_FAILED, CREDITS_LOW, PURCHASE_APPROVED)
"""Every message type, in the order the docs list them; an endpoint subscribes to some or all of them."""

E = table_of(WebhookEndpoint)


def timestamp(at: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and `Z`, as the Standard Webhooks examples write `timestamp`."""
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _hearing(event_id: int | sa.ColumnElement[int] | None) -> sa.ColumnElement[bool]:
    """The endpoints that hear messages about `event_id`: active, and the event's own or without an event filter."""
    scope: sa.ColumnElement[bool] = E.c.event_id.is_(None)
    if event_id is not None:
        scope = sa.or_(scope, E.c.event_id == event_id)
    return sa.and_(E.c.active.is_(True), scope)


def endpoints_in_scope(event_id: int | None) -> sa.Select[Any]:
    """`(id, types)` of the endpoints that hear messages about `event_id`, by id."""
    return sa.select(E.c.id, E.c.types).where(_hearing(event_id)).order_by(E.c.id)


def listening(event_id: sa.ColumnElement[int]) -> sa.ScalarSelect[Any]:
    """`endpoints_in_scope` as one JSON value, `[[id, types], …]` (or null), correlated to an `event_id` column of a
    PostgreSQL statement (`outcomes.complete` reads them with the job it completes); pass what it returned to
    `publish` as `endpoints`."""
    pairs = sa.func.json_agg(sa.func.json_build_array(E.c.id, E.c.types), type_=sa.JSON)
    return sa.select(pairs).where(_hearing(event_id)).scalar_subquery()


async def publish(
    session: AsyncSession,
    type_: str,
    data: dict[str, Any],
    *,
    event_id: int | None = None,
    user_id: int | None = None,
    bus: Bus | None = None,
    endpoints: list[Any] | None = None,
) -> str | None:
    """Write message `type_` and a due delivery for each endpoint that hears it; returns the message id, or None
    when no endpoint does. With `bus`, the webhook senders are woken once the transaction commits (otherwise they
    find it at their next poll). `endpoints` are the `(id, types)` pairs of `endpoints_in_scope(event_id)` when the
    caller read them already in this transaction (`listening`); otherwise they are read here."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown webhook message type {type_!r}")
    if endpoints is None:
        endpoints = list((await session.execute(endpoints_in_scope(event_id))).all())
    endpoint_ids = [endpoint_id for endpoint_id, types in endpoints if type_ in (types or ())]
    if not endpoint_ids:
        return None
    now = utcnow()
    message_id = new_message_id()
    await session.execute(
        sa.insert(table_of(WebhookMessage)).values(
            id=message_id, type=type_, event_id=event_id, user_id=user_id, data=data, created_at=now
        )
    )
    await session.execute(
        sa.insert(table_of(WebhookDelivery)),
        [{"message_id": message_id, "endpoint_id": endpoint_id, "state": "pending", "attempts": 0,
          "next_attempt_at": now, "created_at": now} for endpoint_id in endpoint_ids],
    )  # fmt: skip
    if bus is not None:
        on_commit(session, bus.wake_webhook_senders)
    return message_id


def job_data(base_url: str, job: Job) -> dict[str, Any]:
    """What `job.completed` and `job.failed` say about a job that just ended.

    `result_url` is left empty here: a signed link expires, so the sender signs a fresh one for every attempt
    (a message retried ten hours later still carries a working link)."""
    owner = {"event_id": job.event_id} if job.event_id is not None else {"user_id": job.user_id}
    data: dict[str, Any] = {
        "job_id": job.id,
        **owner,
        "guest_id": job.guest_id,
        "style": job.style_id,
        "page_url": page_url(base_url, job.public_id),
        "completed_at": timestamp(job.completed_at) if job.completed_at else None,
    }
    if job.state == JobState.completed:
        data["result_url"] = None
    else:
        data["error"] = {"code": job.error_code, "message": job.error_message}
    return data


async def job_ended(
    session: AsyncSession, bus: Bus, base_url: str, job: Job, *, endpoints: list[Any] | None = None
) -> str | None:
    """Publish `job.completed` or `job.failed` for a job `outcomes` just ended, in its transaction."""
    type_ = JOB_COMPLETED if job.state == JobState.completed else JOB_FAILED
    data = job_data(base_url, job)
    return await publish(session, type_, data, event_id=job.event_id, user_id=job.user_id, bus=bus, endpoints=endpoints)


async def job_messages(session: AsyncSession, event_id: int | None, job_ids: list[str]) -> list[WebhookMessage]:
    """The `job.completed` / `job.failed` messages written about these jobs of one event (for a guest's export)."""
    if not job_ids:
        return []
    M = table_of(WebhookMessage).c
    owner = M.event_id == event_id if event_id is not None else M.event_id.is_(None)
    query = sa.select(WebhookMessage).where(owner, M.type.in_((JOB_COMPLETED, JOB_FAILED))).order_by(M.created_at)
    wanted = set(job_ids)
    return [m for m in (await session.execute(query)).scalars() if m.data.get("job_id") in wanted]


async def forget_guest(session: AsyncSession, event_id: int | None, job_ids: list[str]) -> int:
    """Blank the guest id in the messages about these jobs (a guest asked to be forgotten); returns how many
    messages changed. The messages stay, so integrators still learn how each job ended."""
    changed = 0
    for message in await job_messages(session, event_id, job_ids):
        if message.data.get("guest_id") is not None:
            message.data = {**message.data, "guest_id": None}
            session.add(message)
            changed += 1
    return changed
