"""Low-credit alerts for organisers: one per event and threshold (50 %, 25 %, 0 % of granted credits).

`check_credit_alerts` runs inside the settle transaction and inserts a `CreditAlert` row for every threshold
the balance is at or below; the unique (event_id, threshold) key makes each alert fire once even when many
settlements cross the line at the same moment. The Notifier sends pending rows to `col(Event.alert_urls)`.
Each new threshold is also a `credits.low` webhook message for the operator's systems (`outbound.outbox`), written
in the same savepoint as its alert row, so the message exists exactly when the alert does.
`reset_credit_alerts` is for top-ups: thresholds the balance is back above may fire again later.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.bus import Bus
from photobot.db import execute_dml
from photobot.db.models import CreditAlert, Event, utcnow
from photobot.db.upsert import insert_ignore
from photobot.outbound import outbox

log = logging.getLogger("photobot.notify")

THRESHOLDS = (50, 25, 0)


def crossed_thresholds(credits: int, granted_total: int) -> list[int]:
    """Thresholds (percent of the granted total) the balance is at or below; none without a grant."""
    if granted_total <= 0:
        return []
    return [t for t in THRESHOLDS if credits * 100 <= granted_total * t]


async def _balance(session: AsyncSession, event_id: int) -> tuple[int, int] | None:
    # Read the committed-or-ours numbers, not the caller's possibly stale object.
    row = (
        await session.execute(sa.select(col(Event.credits), col(Event.granted_total)).where(col(Event.id) == event_id))
    ).first()
    return (int(row[0]), int(row[1])) if row else None


async def check_credit_alerts(session: AsyncSession, event: Event, *, bus: Bus | None = None) -> list[int]:
    """Record an alert (and a `credits.low` webhook message) for each threshold the event's balance has crossed;
    returns the thresholds new now. `bus` wakes the webhook senders after the commit.

    `event` must have been read in the caller's transaction, after its last change to the balance (the settlement
    reads it with `populate_existing`): its `credits` and `granted_total` are the balance checked, without a
    second read. Most settlements cross nothing, and then nothing is written and no savepoint opened.
    A failure to write the alert never undoes the settlement (the writes run in a savepoint; errors are logged).
    """
    if event.id is None:
        return []
    balance = (int(event.credits), int(event.granted_total))
    if not crossed_thresholds(*balance):
        return []
    try:
        async with session.begin_nested():
            crossed = crossed_thresholds(*balance)
            now = utcnow()
            rows = [
                {"event_id": event.id, "threshold": t, "state": "pending", "attempts": 0, "created_at": now}
                for t in crossed
            ]
            created = await insert_ignore(session, CreditAlert, rows, ["event_id", "threshold"])
            for alert in created:
                data = {"event_id": event.id, "balance": balance[0], "granted_total": balance[1],
                        "threshold": alert.threshold}  # fmt: skip
                await outbox.publish(session, outbox.CREDITS_LOW, data, event_id=event.id, bus=bus)
    except Exception:
        log.exception("checking credit alerts failed", extra={"event_id": event.id})
        return []
    for alert in created:
        log.info("credit alert queued", extra={"event_id": event.id, "threshold": alert.threshold})
    return [a.threshold for a in created]


async def reset_credit_alerts(session: AsyncSession, event: Event) -> int:
    """After a top-up: forget alerts for thresholds the balance is above again, so they can fire anew."""
    if event.id is None:
        return 0
    balance = await _balance(session, event.id)
    if balance is None:
        return 0
    still = crossed_thresholds(*balance)
    stmt = sa.delete(CreditAlert).where(col(CreditAlert.event_id) == event.id)
    if still:
        stmt = stmt.where(col(CreditAlert.threshold).not_in(still))
    return await execute_dml(session, stmt)
