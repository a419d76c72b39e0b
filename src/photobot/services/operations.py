"""Operator actions on jobs and events, shared by the CLI (`photobot jobs retry|refund`, `events stats`) and
the admin API (`/v1/admin/jobs/{id}/retry|fail|resend`, `/v1/admin/events/{id}/stats`).

- **retry** never reopens a failed job: the credit ledger holds exactly one `reserve` per job and a failed job
  has already been released. Instead a *new* job is made through `jobs.accept.create_job` (the same path as a
  kiosk's submission) with the same parameters, its input photo copied under the new job's key and a new credit
  reserved (402-style `Invalid` when the account has none left); both jobs get a `JobTransition` note naming the
  other ("retry of …" / "retried as …").
- **fail and refund** moves a stuck in-flight job to `failed` through `jobs.outcomes.fail`, which releases
  the credit exactly once (a conditional state update guards it), plans the failure notifications and, once
  committed, tells live pages and notifiers — the same effects as any other failure.
- **resend** queues one notification channel again (see `notify.service.resend_notification`).
- **stats** counts an event's jobs and credits.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.bus import Bus
from photobot.db import Database
from photobot.db.models import (
    IN_FLIGHT,
    CreditLedger,
    Event,
    Job,
    JobState,
    JobTransition,
    LedgerReason,
    Notification,
    state_values,
)
from photobot.jobs import outcomes
from photobot.jobs.accept import JobSpec, create_job
from photobot.logs import bind
from photobot.notify import NotificationNotFound, resend_notification
from photobot.problems import Problem
from photobot.services import Invalid, NotFound
from photobot.settings import Settings
from photobot.storage import Storage, StorageError
from photobot.storage.keys import extension_of, is_upload

log = logging.getLogger(__name__)

OPERATOR_FAILED = "operator_failed"


class NoCreditsLeft(Invalid):
    """The account cannot pay for the retry."""


class WrongState(Invalid):
    """The job is not in a state the operation applies to."""


class GuestLimitReached(Invalid):
    """The guest already has as many photos as the event allows (a retry would make one more)."""


async def _job(session: AsyncSession, job_id: str) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


# --- retry ------------------------------------------------------------------------------------------------
async def retry_job(db: Database, storage: Storage, bus: Bus, settings: Settings, job_id: str) -> Job:
    """Make a new job from a failed one (same parameters and photo, a new credit); returns the new job."""
    async with db.session() as session:
        old = await _job(session, job_id)
    if old.state != JobState.failed:
        raise WrongState(f"job {job_id} is {old.state}: only failed jobs can be retried")
    if old.input_key is None:  # a text-to-image job: nothing to copy
        return await _retried(create_job(db, storage, bus, settings, JobSpec.of_job(old), None, retry_of=old.id), old)
    if old.purged_at is not None:
        raise Invalid(f"job {job_id}: its input photo was already deleted (retention)")
    tmp_dir = settings.var_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="retry-", delete=False) as handle:
        photo = Path(handle.name)
    try:
        try:
            await storage.download_to(old.input_key, photo)
        except (StorageError, OSError):
            raise Invalid(f"the input photo {old.input_key} is no longer stored") from None
        return await _retried(
            create_job(
                db, storage, bus, settings, JobSpec.of_job(old), photo, extension=extension_of(old.input_key),
                retry_of=old.id, as_uploaded=is_upload(old.input_key),
            ),
            old,
        )  # fmt: skip
    finally:
        photo.unlink(missing_ok=True)


async def _retried(creating: Awaitable[Job], old: Job) -> Job:
    try:
        job = await creating
    except Problem as exc:
        if exc.code == "no_credits":
            raise NoCreditsLeft("the account has no credits left for a retry") from None
        if exc.code == "guest_limit_reached":
            raise GuestLimitReached(f"job {old.id}: {exc.detail}") from None
        raise
    with bind(job_id=job.id, event_id=job.event_id):
        log.info("job retried", extra={"retry_of": old.id})
    return job


# --- fail and refund ----------------------------------------------------------------------------------------
async def fail_and_refund(db: Database, bus: Bus, settings: Settings, job_id: str, reason: str | None = None) -> Job:
    """Fail a stuck in-flight job and release its credit (exactly once); returns the failed job."""
    message = (reason or "Stopped by an operator; the credit was refunded.").strip()[:1000]
    async with db.session() as session:
        job = await _job(session, job_id)
        if JobState(job.state).final:
            raise WrongState(f"job {job_id} is already {job.state}")
        failed = await outcomes.fail(session, bus, settings, job_id, OPERATOR_FAILED, message)
        if failed is None:
            raise WrongState(f"job {job_id} changed state meanwhile; look again")
    with bind(job_id=job_id, event_id=failed.event_id):
        log.info("job failed and refunded by an operator")
    return failed


# --- resend -------------------------------------------------------------------------------------------------
async def resend(db: Database, bus: Bus, settings: Settings, job_id: str, channel: str) -> Notification:
    """Queue one notification channel of a job again (also after it was sent)."""
    try:
        return await resend_notification(db, job_id, channel, settings=settings, bus=bus)
    except NotificationNotFound as exc:
        raise NotFound(str(exc).strip("'\"")) from None


# --- show ---------------------------------------------------------------------------------------------------
async def job_details(session: AsyncSession, job_id: str) -> dict[str, Any]:
    """A job with its transitions, ledger rows and notifications (for `jobs show` and the admin API)."""
    job = await _job(session, job_id)
    transitions = (
        await session.execute(
            sa.select(JobTransition).where(col(JobTransition.job_id) == job_id).order_by(col(JobTransition.id))
        )
    ).scalars()
    ledger = (
        await session.execute(
            sa.select(CreditLedger).where(col(CreditLedger.job_id) == job_id).order_by(col(CreditLedger.id))
        )
    ).scalars()
    notifications = (
        await session.execute(
            sa.select(Notification).where(col(Notification.job_id) == job_id).order_by(col(Notification.id))
        )
    ).scalars()
    return {"job": job, "transitions": list(transitions), "ledger": list(ledger), "notifications": list(notifications)}


# --- stats --------------------------------------------------------------------------------------------------
@dataclass
class EventStats:
    event_id: int
    name: str
    submitted: int
    completed: int
    failed: int
    in_flight: int
    credits_spent: int
    credits_reserved: int
    credits_refunded: int
    credits_balance: int
    credits_granted: int
    since: datetime | None = None
    until: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("since", "until"):
            if data[name] is not None:
                data[name] = data[name].isoformat()
        return data


async def event_stats(
    session: AsyncSession, event_id: int, *, since: datetime | None = None, until: datetime | None = None
) -> EventStats:
    """Jobs submitted / completed / failed / in flight, and credits spent, for one event (optionally a window
    of job creation times)."""
    event = await session.get(Event, event_id)
    if event is None:
        raise NotFound(f"event {event_id} not found")
    where = [col(Job.event_id) == event_id]
    if since is not None:
        where.append(col(Job.created_at) >= since)
    if until is not None:
        where.append(col(Job.created_at) < until)
    rows = (
        await session.execute(
            sa.select(col(Job.state), sa.func.count(), sa.func.coalesce(sa.func.sum(col(Job.cost)), 0))
            .where(*where)
            .group_by(col(Job.state))
        )
    ).all()
    by_state = {state: (int(count), int(cost)) for state, count, cost in rows}
    in_flight = state_values(IN_FLIGHT)
    refunded_query = (
        sa.select(sa.func.coalesce(sa.func.sum(col(CreditLedger.delta)), 0))
        .join(Job, col(Job.id) == col(CreditLedger.job_id))
        .where(col(CreditLedger.reason) == LedgerReason.release, *where)
    )
    refunded = int((await session.execute(refunded_query)).scalar_one() or 0)
    return EventStats(
        event_id=event_id,
        name=event.name,
        submitted=sum(count for count, _ in by_state.values()),
        completed=by_state.get(JobState.completed.value, (0, 0))[0],
        failed=by_state.get(JobState.failed.value, (0, 0))[0],
        in_flight=sum(by_state.get(s, (0, 0))[0] for s in in_flight),
        credits_spent=by_state.get(JobState.completed.value, (0, 0))[1],
        credits_reserved=sum(by_state.get(s, (0, 0))[1] for s in in_flight),
        credits_refunded=refunded,
        credits_balance=event.credits,
        credits_granted=event.granted_total,
        since=since,
        until=until,
    )


async def all_event_stats(
    session: AsyncSession, *, since: datetime | None = None, until: datetime | None = None
) -> list[EventStats]:
    ids = list((await session.execute(sa.select(col(Event.id)).order_by(col(Event.id)))).scalars())
    return [await event_stats(session, event_id, since=since, until=until) for event_id in ids]


__all__ = [
    "OPERATOR_FAILED",
    "EventStats",
    "GuestLimitReached",
    "NoCreditsLeft",
    "WrongState",
    "all_event_stats",
    "event_stats",
    "fail_and_refund",
    "job_details",
    "resend",
    "retry_job",
]
