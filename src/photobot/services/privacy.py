"""What an organiser can promise guests about their data, shared by the CLI (`photobot guests forget|export`,
`events purge`, `jobs approve|hide`) and the admin API (`/v1/admin/events/{id}/forget|export|purge`,
`/v1/admin/jobs/{id}/approve|hide`). See docs/privacy.md.

- **forget** one guest of one event (by e-mail, phone or guest id): every photo of their jobs is deleted from
  storage (input, upload, result, thumbnail), their e-mail, phone and guest id are blanked on the job, on its
  notification rows and in the outbound webhook messages about it, unsent notifications are cancelled, and the job
  row stays, anonymised, with its ledger rows
  (the credit history must keep balancing). A job still in flight is failed first through `jobs.outcomes.fail`
  (its credit released), so no step writes a photo after we deleted it. Pages and media links then answer 410.
  The order — mark and fail, delete the files, then blank the contact — means a store that fails half-way leaves
  the contact in place, so running forget again finds the guest and finishes the job.
- **export** everything stored about one guest (the jobs, their history, ledger rows, notifications with the
  unmasked targets — it is the guest's own data —, the outbound webhook messages about the jobs, and the photos
  still stored, with download links).
- **purge** an event: every photo of every job is deleted and the jobs marked purged (their pages answer 410);
  contact details stay (forget removes those).
- **approve / hide** a photo for the event's gallery and live wall (moderation); walls hear of it at once.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import phonenumbers
import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.bus import Bus
from photobot.db import Database, on_commit
from photobot.db.models import (
    IN_FLIGHT,
    CreditLedger,
    Event,
    Job,
    JobState,
    JobTransition,
    Notification,
    state_values,
    utcnow,
)
from photobot.jobs import outcomes
from photobot.jobs.accept import same_guest
from photobot.jobs.retention import erase_photos
from photobot.logs import bind
from photobot.outbound import outbox
from photobot.services import Invalid, NotFound
from photobot.services.operations import WrongState
from photobot.settings import Settings
from photobot.storage import Storage

log = logging.getLogger(__name__)

FORGOTTEN = "guest_forgotten"
PURGED = "event_purged"
UNSENT = ("pending", "sending")
CANCELLED = "cancelled"


@dataclass(frozen=True)
class GuestRef:
    """One guest of one event, named by exactly one of their identifiers (normalised as intake stores them)."""

    email: str | None = None
    phone: str | None = None
    guest_id: str | None = None

    @classmethod
    def of(cls, *, email: str | None = None, phone: str | None = None, guest_id: str | None = None) -> GuestRef:
        given = {k: v.strip() for k, v in {"email": email, "phone": phone, "guest_id": guest_id}.items() if v}
        given = {k: v for k, v in given.items() if v}
        if len(given) != 1:
            raise Invalid("name the guest by exactly one of --email, --phone or --guest-id")
        if "phone" in given:
            given["phone"] = _e164(given["phone"])
        if "email" in given and "@" not in given["email"]:
            raise Invalid("email must be an e-mail address")
        return cls(**given)

    def where(self, event_id: int) -> sa.ColumnElement[bool]:
        return same_guest(event_id, self.guest_id, self.email, self.phone)

    def describe(self) -> str:
        """For logs: which identifier, never its value."""
        return "email" if self.email else "phone" if self.phone else "guest_id"


def _e164(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise Invalid("phone must be an E.164 number such as +628123456789") from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid("phone must be an E.164 number such as +628123456789")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


async def _event(db: Database, event_id: int) -> Event:
    async with db.session() as session:
        event = await session.get(Event, event_id)
    if event is None:
        raise NotFound(f"event {event_id} not found")
    return event


async def _fail_in_flight(
    db: Database, bus: Bus, settings: Settings, job_ids: list[str], code: str, message: str
) -> int:
    """Fail the jobs still in flight (credit released, exactly once), so no step writes a photo after erasure."""
    failed = 0
    for job_id in job_ids:
        async with db.session() as session:
            if await outcomes.fail(session, bus, settings, job_id, code, message) is not None:
                failed += 1
    return failed


def _tell_pages(session: AsyncSession, bus: Bus, jobs: list[Job]) -> None:
    """After commit: guest pages look again (and find 410), walls drop the photos."""

    def publish() -> None:
        for job in jobs:
            bus.job_changed(job.id, job.public_id, JobState(job.state).public, None)
            if job.event_id is not None:
                bus.gallery_changed(job.event_id, job.id)

    on_commit(session, publish)


# --- forget ------------------------------------------------------------------------------------------------
@dataclass
class ForgetReport:
    event_id: int
    jobs: int  # the guest's jobs, now anonymised
    jobs_failed: int  # of them, still in flight and failed (credit released)
    files_deleted: int
    notifications_cancelled: int
    job_ids: list[str]
    webhook_messages_scrubbed: int = 0  # outbound job messages whose guest id was blanked

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def forget_guest(
    db: Database, storage: Storage, bus: Bus, settings: Settings, event_id: int, guest: GuestRef
) -> ForgetReport:
    """Erase one guest of one event (see the module docstring); idempotent: a second call finds nobody."""
    await _event(db, event_id)
    async with db.session() as session:
        jobs = list(
            (await session.execute(sa.select(Job).where(guest.where(event_id)).order_by(col(Job.id)))).scalars()
        )
    ids = [job.id for job in jobs]
    if not ids:
        return ForgetReport(event_id, 0, 0, 0, 0, [])
    failed = await _fail_in_flight(db, bus, settings, [j.id for j in jobs if j.state in state_values(IN_FLIGHT)],
                                   FORGOTTEN, "The guest's data was erased at their request.")  # fmt: skip
    now = utcnow()
    async with db.session() as session:  # 1. off every page and wall, unsent messages stopped
        await session.execute(
            sa.update(Job)
            .where(col(Job.id).in_(ids))
            .values(forgotten_at=now, purged_at=sa.func.coalesce(col(Job.purged_at), now), updated_at=now)
        )
        cancelled = await session.execute(
            sa.update(Notification)
            .where(col(Notification.job_id).in_(ids), col(Notification.state).in_(UNSENT))
            .values(state=CANCELLED, next_attempt_at=None, lease_until=None)
        )
        jobs = list((await session.execute(sa.select(Job).where(col(Job.id).in_(ids)))).scalars())
        _tell_pages(session, bus, jobs)
    deleted = 0
    for job in jobs:  # 2. the photos
        deleted += await erase_photos(storage, job)
    async with db.session() as session:  # 3. the contact details (last: a failed step 2 leaves the guest findable)
        await session.execute(
            sa.update(Job)
            .where(col(Job.id).in_(ids))
            .values(email=None, phone=None, guest_id=None, request_hash=None, result_urls=[], provider_meta={})
        )
        await session.execute(sa.update(Notification).where(col(Notification.job_id).in_(ids)).values(target=""))
        scrubbed = await outbox.forget_guest(session, event_id, ids)
    cancelled_count = int(getattr(cancelled, "rowcount", 0) or 0)
    report = ForgetReport(event_id, len(ids), failed, deleted, cancelled_count, ids, scrubbed)
    with bind(event_id=event_id):
        log.info("guest forgotten", extra={"by": guest.describe(), "jobs": len(ids), "files_deleted": deleted})
    return report


# --- export ------------------------------------------------------------------------------------------------
def _row(obj: Any, *, exclude: set[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = obj.model_dump(mode="json", exclude=exclude or set())
    return data


async def export_guest(
    db: Database, storage: Storage, settings: Settings, event_id: int, guest: GuestRef
) -> dict[str, Any]:
    """Everything stored about one guest of one event, as JSON-safe data (a subject access request)."""
    event = await _event(db, event_id)
    async with db.session() as session:
        jobs = list(
            (await session.execute(sa.select(Job).where(guest.where(event_id)).order_by(col(Job.created_at)))).scalars()
        )
        ids = [job.id for job in jobs]

        async def rows(model: Any, column: Any) -> dict[str, list[Any]]:
            found: dict[str, list[Any]] = {job_id: [] for job_id in ids}
            if ids:
                for row in (
                    await session.execute(sa.select(model).where(column.in_(ids)).order_by(model.id))
                ).scalars():
                    found[getattr(row, "job_id")].append(_row(row))  # noqa: B009 - every one of these has job_id
            return found

        transitions = await rows(JobTransition, col(JobTransition.job_id))
        ledger = await rows(CreditLedger, col(CreditLedger.job_id))
        notifications = await rows(Notification, col(Notification.job_id))
        messages: dict[str, list[Any]] = {job_id: [] for job_id in ids}
        for message in await outbox.job_messages(session, event_id, ids):
            messages[message.data["job_id"]].append(_row(message))
    exported = []
    for job in jobs:
        photos = []
        for kind, key in (("input", job.input_key), ("result", job.result_key)):
            if key and await storage.exists(key):
                photos.append({"kind": kind, "key": key, "url": await storage.url(key, settings.signed_url_ttl_s)})
        exported.append({
            "job": _row(job, exclude={"request_hash", "idempotency_key"}),
            "photos": photos,
            "transitions": transitions[job.id],
            "ledger": ledger[job.id],
            "notifications": notifications[job.id],
            "webhook_messages": messages[job.id],
        })  # fmt: skip
    return {
        "event": {"id": event.id, "name": event.name},
        "guest": {k: v for k, v in asdict(guest).items() if v},
        "exported_at": utcnow().isoformat(),
        "jobs": exported,
    }


# --- purge an event ----------------------------------------------------------------------------------------
@dataclass
class PurgeReport:
    event_id: int
    jobs: int  # jobs whose photos were deleted
    jobs_failed: int  # of them, still in flight and failed (credit released)
    files_deleted: int
    notifications_cancelled: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def purge_event(db: Database, storage: Storage, bus: Bus, settings: Settings, event_id: int) -> PurgeReport:
    """Delete every photo of an event (see the module docstring); idempotent."""
    await _event(db, event_id)
    async with db.session() as session:
        in_flight = list(
            (
                await session.execute(
                    sa.select(col(Job.id)).where(
                        col(Job.event_id) == event_id, col(Job.state).in_(state_values(IN_FLIGHT))
                    )
                )
            ).scalars()
        )
    failed = await _fail_in_flight(db, bus, settings, in_flight, PURGED, "The event's photos were deleted.")
    now = utcnow()
    async with db.session() as session:
        newly = list(
            (
                await session.execute(sa.select(Job).where(col(Job.event_id) == event_id, col(Job.purged_at).is_(None)))
            ).scalars()
        )
        await session.execute(
            sa.update(Job).where(col(Job.id).in_([job.id for job in newly])).values(purged_at=now, updated_at=now)
        )
        cancelled = await session.execute(
            sa.update(Notification)
            .where(
                col(Notification.job_id).in_(sa.select(col(Job.id)).where(col(Job.event_id) == event_id)),
                col(Notification.state).in_(UNSENT),
            )
            .values(state=CANCELLED, next_attempt_at=None, lease_until=None)
        )
        jobs = list((await session.execute(sa.select(Job).where(col(Job.event_id) == event_id))).scalars())
        _tell_pages(session, bus, newly)
    deleted = 0
    for job in jobs:
        deleted += await erase_photos(storage, job)
    with bind(event_id=event_id):
        log.info("event purged", extra={"jobs": len(jobs), "files_deleted": deleted})
    return PurgeReport(event_id, len(jobs), failed, deleted, int(getattr(cancelled, "rowcount", 0) or 0))


# --- moderation --------------------------------------------------------------------------------------------
async def approve(db: Database, bus: Bus, job_id: str) -> Job:
    """Show a completed photo on its event's gallery and live wall (also a hidden one, again)."""
    return await _moderate(db, bus, job_id, "approve")


async def hide(db: Database, bus: Bus, job_id: str) -> Job:
    """Take a photo off its event's gallery and live walls (its guest's own page still shows it)."""
    return await _moderate(db, bus, job_id, "hide")


async def _moderate(db: Database, bus: Bus, job_id: str, action: str) -> Job:
    async with db.session() as session:
        job = await session.get(Job, job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if job.event_id is None:
            raise WrongState(f"job {job_id} belongs to a user, not an event: it is on no gallery")
        if job.purged_at is not None:
            raise WrongState(f"job {job_id}: its photo was already deleted")
        now = utcnow()
        if action == "approve":
            if job.state != JobState.completed:
                raise WrongState(f"job {job_id} is {job.state}: only completed photos can be approved")
            changes: dict[str, datetime | None] = {"hidden_at": None}
            if job.approved_at is None or job.hidden_at is not None:
                changes["approved_at"] = now  # it appears (again) now: walls add it at the top
        else:
            changes = {"hidden_at": job.hidden_at or now}
        for name, value in changes.items():
            setattr(job, name, value)
        session.add(job)
        event_id = job.event_id
        on_commit(session, lambda: bus.gallery_changed(event_id, job_id))
    with bind(job_id=job_id, event_id=event_id):
        log.info("photo %s", "approved" if action == "approve" else "hidden")
    return job


__all__ = [
    "ForgetReport",
    "GuestRef",
    "PurgeReport",
    "approve",
    "export_guest",
    "forget_guest",
    "hide",
    "purge_event",
]
