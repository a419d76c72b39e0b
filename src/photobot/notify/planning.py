"""Planning: the notification rows a finished job creates, inside the transaction that finishes it.

Writing the rows in the same transaction as `completed` / `failed` means a crash can lose neither the state
change nor the promise to notify; the unique (job_id, channel) key means finishing a job twice plans nothing
new. Sending happens later, in the Notifier, outside any transaction.
"""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.db.models import Event, Job, Notification, NotificationKind, utcnow
from photobot.db.upsert import insert_ignore
from photobot.notify.channels import describe_target, plan_channels
from photobot.settings import Settings

log = logging.getLogger("photobot.notify")


async def plan_notifications(
    session: AsyncSession,
    job: Job,
    event: Event | None,
    settings: Settings,
    kind: NotificationKind = "ready",
) -> list[Notification]:
    """Queue one notification per applicable channel for `job`; returns the rows newly created.

    `kind="failed"` queues the apology only when the event enables `notify_on_failure` (never for user jobs).
    Never raises: the work runs in a savepoint, and a failure is logged and leaves the caller's transaction
    as it was, because a notification problem must not undo a finished photo.
    """
    if kind == "failed" and not (event is not None and event.notify_on_failure):
        return []
    try:
        planned = plan_channels(job, event, settings)
        if not planned:
            return []
        now = utcnow()
        rows = [
            {
                "job_id": job.id,
                "channel": p.channel,
                "kind": kind,
                "target": p.target,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for p in planned
        ]
        async with session.begin_nested():
            created: list[Notification] = await insert_ignore(session, Notification, rows, ["job_id", "channel"])
    except Exception:
        log.exception("planning notifications failed", extra={"job_id": job.id})
        return []
    for row in created:
        log.info(
            "notification queued",
            extra={
                "job_id": job.id,
                "channel": row.channel,
                "kind": kind,
                "target": describe_target(row.channel, row.target),
            },
        )
    return created
