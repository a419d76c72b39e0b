"""The notification tables as a queue: claim due rows with a lease, record outcomes while the lease is ours.

Claiming is one conditional UPDATE (pending and due → sending, or sending with an expired lease, i.e. its
worker died), so two workers never take the same row; on PostgreSQL the candidate SELECT also skips rows
another worker has locked. Recording is a conditional UPDATE too, applied only while the row is still
`sending` under our lease; a row reset by `resend` or retaken after our lease ran out is left alone.

Credit alerts have no lease column: while an alert is not yet sent its `sent_at` holds the time it may next be
tried (pending) or the end of its lease (sending); once sent it is the real send time.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from photobot.db import Database, execute_dml
from photobot.db.models import CreditAlert, Notification, NotificationKind, table_of, utcnow
from photobot.notify.delivery import SendResult

log = logging.getLogger("photobot.notify")

N = table_of(Notification)
A = table_of(CreditAlert)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_backoff_s: float = 30.0
    max_backoff_s: float = 3600.0

    def delay_s(self, attempts: int) -> float:
        """Exponential backoff after the n-th failed attempt, capped, with a little jitter against herds."""
        delay = min(self.max_backoff_s, self.base_backoff_s * (2 ** max(0, attempts - 1)))
        return float(delay * random.uniform(1.0, 1.2))

    def outcome(self, result: SendResult, attempts: int) -> str:
        """sent | retry | failed."""
        if result.ok:
            return "sent"
        return "failed" if result.permanent or attempts >= self.max_attempts else "retry"


@dataclass(frozen=True)
class NotificationClaim:
    id: int
    lease_until: datetime
    attempts: int  # including this one
    job_id: str
    channel: str
    kind: NotificationKind
    target: str


@dataclass(frozen=True)
class AlertClaim:
    id: int
    lease_until: datetime
    attempts: int
    event_id: int
    threshold: int


async def _claim(
    database: Database, table: Any, due: Any, order: list[Any], limit: int, values: dict[str, Any], returning: list[Any]
) -> list[Any]:
    async with database.session() as session:
        query = sa.select(table.c.id).where(due).order_by(*order).limit(limit)
        if database.is_postgres:
            query = query.with_for_update(skip_locked=True)
        ids = list((await session.execute(query)).scalars())
        if not ids:
            return []
        stmt = sa.update(table).where(table.c.id.in_(ids), due).values(**values).returning(*returning)
        return list(await session.execute(stmt))


async def claim_notifications(database: Database, limit: int, lease_s: float) -> list[NotificationClaim]:
    now = utcnow()
    lease = now + timedelta(seconds=lease_s)
    due = sa.or_(
        sa.and_(N.c.state == "pending", sa.or_(N.c.next_attempt_at.is_(None), N.c.next_attempt_at <= now)),
        sa.and_(N.c.state == "sending", N.c.lease_until < now),
    )
    rows = await _claim(
        database,
        N,
        due,
        [N.c.next_attempt_at, N.c.id],
        limit,
        {"state": "sending", "lease_until": lease, "attempts": N.c.attempts + 1},
        [N.c.id, N.c.attempts, N.c.job_id, N.c.channel, N.c.kind, N.c.target],
    )
    return [NotificationClaim(r.id, lease, r.attempts, r.job_id, r.channel, r.kind, r.target) for r in rows]


async def claim_alerts(database: Database, limit: int, lease_s: float) -> list[AlertClaim]:
    now = utcnow()
    lease = now + timedelta(seconds=lease_s)
    due = sa.or_(
        sa.and_(A.c.state == "pending", sa.or_(A.c.sent_at.is_(None), A.c.sent_at <= now)),
        sa.and_(A.c.state == "sending", A.c.sent_at < now),
    )
    rows = await _claim(
        database,
        A,
        due,
        [A.c.id],
        limit,
        {"state": "sending", "sent_at": lease, "attempts": A.c.attempts + 1},
        [A.c.id, A.c.attempts, A.c.event_id, A.c.threshold],
    )
    return [AlertClaim(r.id, lease, r.attempts, r.event_id, r.threshold) for r in rows]


async def record_notification(
    database: Database, claim: NotificationClaim, result: SendResult, policy: RetryPolicy
) -> str | None:
    """Write the outcome of one send; returns it (sent | retry | failed), or None when the lease was lost."""
    now = utcnow()
    outcome = policy.outcome(result, claim.attempts)
    values: dict[str, Any] = {"lease_until": None, "last_error": result.error}
    if outcome == "sent":
        values.update(state="sent", sent_at=now, last_error=None, next_attempt_at=None)
    elif outcome == "failed":
        values.update(state="failed", next_attempt_at=None)
    else:
        values.update(state="pending", next_attempt_at=now + timedelta(seconds=policy.delay_s(claim.attempts)))
    stmt = (
        sa.update(N)
        .where(N.c.id == claim.id, N.c.state == "sending", N.c.lease_until == claim.lease_until)
        .values(**values)
    )
    return outcome if await _write(database, stmt) else None


async def record_alert(
    database: Database, claim: AlertClaim, result: SendResult, policy: RetryPolicy, *, skipped: bool = False
) -> str | None:
    """As record_notification, for a credit alert; `skipped` when the event has nowhere to send it."""
    now = utcnow()
    outcome = "skipped" if skipped else policy.outcome(result, claim.attempts)
    values: dict[str, Any] = {"state": outcome, "last_error": result.error, "sent_at": None}
    if outcome == "sent":
        values.update(sent_at=now, last_error=None)
    elif outcome == "retry":
        values.update(state="pending", sent_at=now + timedelta(seconds=policy.delay_s(claim.attempts)))
    stmt = (
        sa.update(A)
        .where(A.c.id == claim.id, A.c.state == "sending", A.c.sent_at == claim.lease_until)
        .values(**values)
    )
    return outcome if await _write(database, stmt) else None


async def _write(database: Database, stmt: Any) -> bool:
    """Run one outcome UPDATE; retried once, because losing a `sent` would send the message again later."""
    for attempt in (1, 2):
        try:
            async with database.session() as session:
                return bool(await execute_dml(session, stmt))
        except Exception:
            if attempt == 2:
                log.exception("recording a notification outcome failed")
                return False
            await asyncio.sleep(0.2)
    return False
