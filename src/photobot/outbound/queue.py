"""Webhook deliveries as a queue: claim due rows with a lease, record each attempt while the lease is ours.

A delivery is one message to one endpoint: `pending` (due at `next_attempt_at`) → `sending` (claimed, leased) →
`delivered`, or back to `pending` with the next delay of `PHOTOBOT_WEBHOOK_RETRY_SCHEDULE`, or `failed` once the
schedule is used up. Claiming is one conditional UPDATE (pending and due, or sending with an expired lease: its
worker died mid-send), so two workers never take the same row; on PostgreSQL the candidate SELECT also skips rows
another worker has locked. Recording is conditional on the row still being ours (`sending`, our lease), and in
the same transaction it appends the attempt (for `photobot webhooks deliveries`) and keeps the endpoint's health:
a success clears `failing_since`; a failure sets it if unset and, once it is older than
`PHOTOBOT_WEBHOOK_DISABLE_AFTER_S`, disables the endpoint and marks an operator alert as pending.

The message id never changes, so a receiver sees the same `webhook-id` on every attempt (and after a replay).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from photobot.db import Database, execute_dml
from photobot.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage, table_of, utcnow

log = logging.getLogger(__name__)

D = table_of(WebhookDelivery)
E = table_of(WebhookEndpoint)
M = table_of(WebhookMessage)
A = table_of(WebhookAttempt)
JITTER = 0.1  # each retry delay is stretched or shrunk by up to 10 %, so failed messages do not return as a herd


@dataclass(frozen=True)
class DeliveryClaim:
    id: int
    message_id: str
    endpoint_id: int
    attempts: int  # of the current schedule, this one included
    lease_until: datetime


@dataclass(frozen=True)
class Attempt:
    """What one HTTP attempt gave: a status (any) or an error before a status (refused, timeout, reset)."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Recorded:
    outcome: str  # delivered | retry | failed
    endpoint_disabled: bool = False


def next_delay(schedule: Sequence[float], attempts: int) -> float | None:
    """Seconds from the `attempts`-th failed attempt to the next one, jittered; None when none is left."""
    if attempts >= len(schedule):
        return None
    return float(schedule[attempts]) * random.uniform(1 - JITTER, 1 + JITTER)


async def claim(database: Database, limit: int, lease_s: float) -> list[DeliveryClaim]:
    """Take up to `limit` due deliveries (oldest due first) for `lease_s` seconds."""
    now = utcnow()
    lease = now + timedelta(seconds=lease_s)
    due = sa.or_(
        sa.and_(D.c.state == "pending", D.c.next_attempt_at <= now),
        sa.and_(D.c.state == "sending", D.c.lease_until < now),
    )
    async with database.session() as session:
        query = sa.select(D.c.id).where(due).order_by(D.c.next_attempt_at, D.c.id).limit(limit)
        if database.is_postgres:
            query = query.with_for_update(skip_locked=True)
        ids = list((await session.execute(query)).scalars())
        if not ids:
            return []
        stmt = (
            sa.update(D)
            .where(D.c.id.in_(ids), due)
            .values(state="sending", lease_until=lease, attempts=D.c.attempts + 1)
            .returning(D.c.id, D.c.message_id, D.c.endpoint_id, D.c.attempts)
        )
        rows = list(await session.execute(stmt))
    return [DeliveryClaim(r.id, r.message_id, r.endpoint_id, r.attempts, lease) for r in rows]


def _ours(claim: DeliveryClaim) -> Any:
    return sa.and_(D.c.id == claim.id, D.c.state == "sending", D.c.lease_until == claim.lease_until)


async def record(
    database: Database,
    claim: DeliveryClaim,
    attempt: Attempt,
    *,
    schedule: Sequence[float],
    disable_after_s: float,
    now: datetime | None = None,
) -> Recorded | None:
    """Write one attempt's outcome; None when the lease was lost meanwhile (a replay, or another worker)."""
    now = now or utcnow()
    values: dict[str, Any] = {"lease_until": None, "last_status": attempt.status_code, "last_error": attempt.error}
    if attempt.ok:
        outcome = "delivered"
        values.update(state="delivered", delivered_at=now, next_attempt_at=None, last_error=None)
    else:
        delay = next_delay(schedule, claim.attempts)
        outcome = "failed" if delay is None else "retry"
        if delay is None:
            values.update(state="failed", next_attempt_at=None)
        else:
            values.update(state="pending", next_attempt_at=now + timedelta(seconds=delay))
    for try_ in (1, 2):  # losing a `delivered` would send the message again later: retry the write once
        try:
            async with database.session() as session:
                if not await execute_dml(session, sa.update(D).where(_ours(claim)).values(**values)):
                    return None
                session.add(
                    WebhookAttempt(
                        delivery_id=claim.id, status_code=attempt.status_code, error=attempt.error,
                        duration_ms=attempt.duration_ms, at=now,
                    )
                )  # fmt: skip
                disabled = await _endpoint_health(session, claim.endpoint_id, attempt.ok, now, disable_after_s)
            return Recorded(outcome, disabled)
        except Exception:
            if try_ == 2:
                log.exception("recording a webhook attempt failed", extra={"delivery_id": claim.id})
                return None
            await asyncio.sleep(0.2)
    return None


async def _endpoint_health(session: Any, endpoint_id: int, ok: bool, now: datetime, disable_after_s: float) -> bool:
    """Success clears the failing streak; a failure starts it, and one older than the limit disables the endpoint
    (once: only an active endpoint is disabled, and only that transaction marks the operator alert)."""
    row = E.c.id == endpoint_id
    if ok:
        await session.execute(sa.update(E).where(row, E.c.failing_since.is_not(None)).values(failing_since=None))
        return False
    await session.execute(sa.update(E).where(row, E.c.failing_since.is_(None)).values(failing_since=now))
    since = now - timedelta(seconds=disable_after_s)
    reason = f"every attempt failed for more than {_duration(disable_after_s)}"
    disabled = await execute_dml(
        session,
        sa.update(E)
        .where(row, E.c.active.is_(True), E.c.failing_since <= since)
        .values(active=False, disabled_reason=reason, alert_pending=True, updated_at=now),
    )
    return bool(disabled)


async def skip(database: Database, claim: DeliveryClaim, reason: str) -> bool:
    """End a delivery that cannot be attempted (its endpoint was disabled, its message is gone) without a request."""
    async with database.session() as session:
        values = {"state": "failed", "lease_until": None, "next_attempt_at": None, "last_error": reason[:500]}
        return bool(await execute_dml(session, sa.update(D).where(_ours(claim)).values(**values)))


async def purge(database: Database, before: datetime, *, batch: int = 500) -> int:
    """Delete messages written before `before` whose deliveries are all over (delivered or failed), with their
    deliveries and attempts; returns how many messages went. Messages carry guests' ids and page links, so they
    go with the photos (`PHOTOBOT_RESULT_TTL_DAYS`); one still being retried is kept until it is over."""
    busy = sa.exists().where(D.c.message_id == M.c.id, D.c.state.in_(("pending", "sending")))
    total = 0
    while True:
        async with database.session() as session:
            ids = list(
                (await session.execute(sa.select(M.c.id).where(M.c.created_at < before, ~busy).limit(batch))).scalars()
            )
            if not ids:
                return total
            deliveries = sa.select(D.c.id).where(D.c.message_id.in_(ids))
            await session.execute(sa.delete(A).where(A.c.delivery_id.in_(deliveries)))
            await session.execute(sa.delete(D).where(D.c.message_id.in_(ids)))
            await session.execute(sa.delete(M).where(M.c.id.in_(ids)))
        total += len(ids)
        if len(ids) < batch:
            return total


def _duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)} days" if seconds != 86400 else "1 day"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} hours"
    return f"{int(seconds)} seconds"
