"""Operator actions on notifications (the CLI's `photobot jobs resend`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.bus import Bus
from photobot.db import Database, on_commit
from photobot.db.models import Event, Job, JobState, Notification, utcnow
from photobot.notify.planning import plan_notifications
from photobot.settings import Settings


class NotificationNotFound(LookupError):
    """No such job, or the job has no notification on that channel (and none applies now)."""


async def resend_notification(
    database: Database, job_id: str, channel: str, *, settings: Settings | None = None, bus: Bus | None = None
) -> Notification:
    """Queue `channel` of a job again on purpose, even when it was already sent; returns the reset row.

    `job_id` may also be the job's public id. When the job has no row for the channel (say SMTP was not
    configured when it finished) and `settings` are given, the row is planned now if the channel applies.
    The Notifier picks the row up on its next pass, or at once when `bus` is given (it wakes every notifier).
    """
    async with database.session() as session:
        job = await session.get(Job, job_id)
        if job is None:
            job = (await session.execute(sa.select(Job).where(col(Job.public_id) == job_id))).scalars().first()
        if job is None:
            raise NotificationNotFound(f"job {job_id} not found")
        if job.forgotten_at is not None:  # its targets were blanked on the guest's request: nobody to send to
            raise NotificationNotFound(f"job {job.id}: the guest's contact details were erased")
        row = await _row(session, job.id, channel)
        if row is None and settings is not None and job.state in (JobState.completed, JobState.failed):
            event = await session.get(Event, job.event_id) if job.event_id is not None else None
            await plan_notifications(
                session, job, event, settings, kind="ready" if job.state == JobState.completed else "failed"
            )
            row = await _row(session, job.id, channel)
        if row is None:
            raise NotificationNotFound(f"job {job.id} has no {channel} notification")
        row.state = "pending"
        row.attempts = 0
        row.next_attempt_at = utcnow()
        row.lease_until = None
        row.last_error = None
        row.sent_at = None
        session.add(row)
        if bus is not None:
            on_commit(session, bus.wake_notifiers)
    return row


async def _row(session: AsyncSession, job_id: str, channel: str) -> Notification | None:
    stmt = sa.select(Notification).where(col(Notification.job_id) == job_id, col(Notification.channel) == channel)
    return (await session.execute(stmt)).scalars().first()
