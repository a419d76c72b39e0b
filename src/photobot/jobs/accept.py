"""Creating a job: the one transaction that inserts a job and reserves its credit — for a kiosk's submission and
for an operator's retry alike.

Order of effects, so that a refused request leaves nothing behind:
1. everything that can be checked without writing (style, parameters, whether the model takes a photo, owner,
   the event's consent rule, the guest's photo cap, balance pre-check) is checked (`plan_job`);
2. the photo, if the style takes one, is written to storage under the job's input key (as uploaded: the submit
   step cleans it);
3. one transaction checks the guest's cap again under the event's row lock (so two kiosks cannot both take the
   last photo), inserts the job and reserves the credit (conditional decrement + `reserve` ledger row);
4. if that transaction fails (no credit, idempotency race, database error) the stored photo is deleted;
5. once it commits, an idle dispatcher is woken (`Bus`), so the job is submitted in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.bus import Bus
from photobot.db import Database, on_commit
from photobot.db.models import Event, Job, JobState, JobTransition, Style, User, new_job_id, utcnow
from photobot.jobs import credits
from photobot.problems import Problem, validation_error
from photobot.providers.assembly import provider_for_style
from photobot.providers.models import SPECS, InvalidParameter, normalise_params
from photobot.settings import Settings
from photobot.storage import Storage
from photobot.storage.keys import input_key, upload_key


@dataclass(frozen=True)
class JobSpec:
    """Everything a job is made from besides its photo: who pays, the style and every generation parameter, and
    the guest's contact. A retry copies it from the failed job."""

    event_id: int | None
    user_id: int | None
    token_id: int | None
    style_id: str
    cost: int
    provider: str
    model: str
    prompt: str
    aspect_ratio: str | None
    resolution: str | None
    output_format: str | None
    reference_keys: list[str] = field(default_factory=list)
    guest_id: str | None = None
    email: str | None = None
    phone: str | None = None
    consent_at: datetime | None = None

    @classmethod
    def of_job(cls, job: Job) -> JobSpec:
        values = {f.name: getattr(job, f.name) for f in fields(cls)}
        values["reference_keys"] = list(job.reference_keys)
        return cls(**values)


@dataclass(frozen=True)
class Guest:
    """Who the photo is for, as the kiosk knows them, and whether they ticked the consent box."""

    guest_id: str | None = None
    email: str | None = None
    phone: str | None = None
    consent: bool | None = None

    @property
    def identified(self) -> bool:
        return bool(self.guest_id or self.email or self.phone)


def no_credits() -> Problem:
    return Problem(402, "no_credits", "No credits left", "The account has no credits left for this style.")


def consent_required() -> Problem:
    return Problem(422, "consent_required", "Consent required",
                   "This event needs the guest's consent: send `consent: true` once they have agreed.")  # fmt: skip


def guest_limit_reached(cap: int) -> Problem:
    return Problem(409, "guest_limit_reached", "Photo limit reached",
                   f"This guest already has {cap} photo{'s' if cap != 1 else ''} at this event, the most it allows.",
                   extra={"limit": cap})  # fmt: skip


def same_guest(event_id: int, guest_id: str | None, email: str | None, phone: str | None) -> sa.ColumnElement[bool]:
    """The jobs of one guest at one event: the same guest id, e-mail (any case) or phone, any of them."""
    matches = []
    if guest_id:
        matches.append(col(Job.guest_id) == guest_id)
    if email:
        matches.append(sa.func.lower(col(Job.email)) == email.lower())
    if phone:
        matches.append(col(Job.phone) == phone)
    assert matches, "a guest needs at least one identifier"
    return sa.and_(col(Job.event_id) == event_id, sa.or_(*matches))


async def guest_photo_count(session: AsyncSession, event_id: int, guest: Guest | JobSpec) -> int:
    """The guest's photos that count against the event's cap: accepted jobs that did not fail."""
    query = (
        sa.select(sa.func.count())
        .select_from(Job)
        .where(same_guest(event_id, guest.guest_id, guest.email, guest.phone), col(Job.state) != JobState.failed.value)
    )
    return int((await session.execute(query)).scalar_one())


async def _check_guest_cap(session: AsyncSession, spec: JobSpec) -> None:
    """Inside the accepting transaction: lock the event's row (held until commit; the reservation would take it
    anyway), then count, so concurrent submissions of one guest are counted one after the other."""
    if spec.event_id is None or not (spec.guest_id or spec.email or spec.phone):
        return
    capped = sa.select(col(Event.max_photos_per_guest)).where(col(Event.id) == spec.event_id)
    if (await session.execute(capped)).scalar_one_or_none() is None:
        return  # no cap: no lock taken early
    cap = (await session.execute(capped.with_for_update())).scalar_one_or_none()
    if cap is not None and await guest_photo_count(session, spec.event_id, spec) >= cap:
        raise guest_limit_reached(cap)


def takes_photo(model: str) -> bool:
    """Whether a job of this model starts from the guest's photo (False: text-to-image, from the prompt alone).
    An unknown model counts as taking one: what a booth does, and `normalise_params` refuses it anyway."""
    spec = SPECS.get(model)
    return spec is None or spec.image_field is not None


def check_photo(style_id: str, model: str, has_photo: bool) -> None:
    """A photo exactly when the model takes one: 422 before anything is stored, never a failed job later."""
    if has_photo and not takes_photo(model):
        raise Problem(
            422, "image_not_accepted", "Invalid request",
            f"Style {style_id!r} makes its picture from the prompt alone ({model} takes no input image): "
            "send the request without `image`.",
            extra={"field": "image"},
        )  # fmt: skip
    if not has_photo and takes_photo(model):
        raise validation_error(
            "image: a file part named `image` (or a JSON `image`) is required",
            [{"field": "image", "message": "required"}],
        )


async def check_style_photo(
    session: AsyncSession, settings: Settings, style_id: str, *, has_photo: bool, default_provider: str | None = None
) -> None:
    """The photo rule alone, before a photo named by URL is fetched (`plan_job` applies it again, with the rest);
    an unknown style is left for `plan_job` to refuse."""
    style = await session.get(Style, style_id)
    if style is not None and style.active:
        model = provider_for_style(settings, style.provider, style.model, default=default_provider)[1]
        check_photo(style.id, model, has_photo)


async def plan_job(
    session: AsyncSession,
    settings: Settings,
    *,
    style_id: str,
    aspect_ratio: str | None,
    resolution: str | None,
    output_format: str | None,
    owner: tuple[int | None, int | None],
    token_id: int | None,
    guest: Guest,
    default_provider: str | None = None,
    has_photo: bool = True,
) -> JobSpec:
    """Check the style (active, offered by the event), the parameters, the photo against the model, the account
    and the event's guest rules (422/409/402) and decide every parameter of the job. `default_provider`: the live
    provider (`Providers.live`) for styles that do not name one."""
    style = await session.get(Style, style_id)
    if style is None or not style.active:
        raise Problem(422, "unknown_style", "Invalid request", f"No active style {style_id!r}.")
    event_id, user_id = owner
    account = await session.get(Event, event_id) if event_id is not None else await session.get(User, user_id)
    if isinstance(account, Event) and account.styles and style.id not in account.styles:
        raise Problem(422, "style_not_offered", "Invalid request", f"This event does not offer style {style_id!r}.",
                      extra={"field": "style"})  # fmt: skip
    provider, model = provider_for_style(settings, style.provider, style.model, default=default_provider)
    check_photo(style.id, model, has_photo)
    try:
        params = normalise_params(
            model,
            aspect_ratio or style.aspect_ratio,
            resolution or style.resolution,
            output_format or style.output_format,
        )
    except InvalidParameter as exc:
        raise Problem(422, "invalid_parameter", "Invalid request", str(exc), extra={"field": exc.field}) from None
    if account is None:
        kind = "event" if event_id is not None else "user"
        raise Problem(422, f"unknown_{kind}", "Invalid request", f"No such {kind}.")
    if isinstance(account, Event):
        if account.consent_required and guest.consent is not True:
            raise consent_required()
        cap = account.max_photos_per_guest
        if cap is not None and guest.identified and await guest_photo_count(session, account.id or 0, guest) >= cap:
            raise guest_limit_reached(cap)
    if account.credits < style.cost:
        raise no_credits()
    return JobSpec(
        event_id=event_id, user_id=user_id, token_id=token_id, style_id=style.id, cost=style.cost,
        provider=provider, model=model, prompt=style.prompt, aspect_ratio=params.aspect_ratio,
        resolution=params.resolution, output_format=params.output_format, reference_keys=list(style.reference_keys),
        guest_id=guest.guest_id, email=guest.email, phone=guest.phone,
        consent_at=utcnow() if guest.consent else None,
    )  # fmt: skip


async def find_idempotent(session: AsyncSession, token_id: int, key: str) -> Job | None:
    query = sa.select(Job).where(col(Job.token_id) == token_id, col(Job.idempotency_key) == key)
    return (await session.execute(query)).scalar_one_or_none()


class IdempotencyRace(Exception):
    """Another request with the same Idempotency-Key committed first."""


async def create_job(
    db: Database,
    storage: Storage,
    bus: Bus,
    settings: Settings,
    spec: JobSpec,
    photo: Path | None,
    *,
    extension: str = "",
    content_type: str | None = None,
    idempotency_key: str | None = None,
    req_hash: str | None = None,
    retry_of: str | None = None,
    as_uploaded: bool = False,
) -> Job:
    """Store the photo (the store takes the file: `photo` is gone afterwards), then insert the job and reserve its
    credit in one transaction (NoCredits → 402 problem; the guest's cap reached meanwhile → 409 problem).
    `photo` is None for a text-to-image job: it has no input key and nothing is stored.

    `as_uploaded`: the photo is the guest's file as received (only its type and size checked); it is stored under
    `upload_key` and the submit step cleans it before anything else happens to it.
    """
    job_id = new_job_id()
    key: str | None = None
    if photo is not None:
        key = (upload_key if as_uploaded else input_key)(job_id, extension)
        await storage.put_file(key, photo, content_type, move=True)
    now = utcnow()
    job = Job(
        id=job_id,
        **{f.name: getattr(spec, f.name) for f in fields(JobSpec)},
        input_key=key,
        state=JobState.pending,
        state_changed_at=now,
        next_attempt_at=now,
        deadline_at=now + timedelta(seconds=settings.job_timeout_s),
        idempotency_key=idempotency_key,
        request_hash=req_hash,
        created_at=now,
        updated_at=now,
    )
    job.reference_keys = list(spec.reference_keys)
    try:
        async with db.session() as session:
            await _check_guest_cap(session, spec)
            session.add(job)
            await session.flush()
            await credits.reserve(session, job)
            note = f"retry of {retry_of}" if retry_of else None
            session.add(JobTransition(job_id=job_id, from_state=None, to_state=JobState.pending, note=note, at=now))
            if retry_of is not None:
                session.add(JobTransition(job_id=retry_of, from_state=JobState.failed, to_state=JobState.failed,
                                          note=f"retried as {job_id}", at=now))  # fmt: skip
            on_commit(session, bus.wake_dispatchers)
    except credits.NoCredits:
        await _forget(storage, key)
        raise no_credits() from None
    except IntegrityError:
        await _forget(storage, key)
        if idempotency_key is not None:
            raise IdempotencyRace() from None
        raise
    except BaseException:
        await _forget(storage, key)
        raise
    return job


async def _forget(storage: Storage, key: str | None) -> None:
    if key is not None:
        await storage.delete(key)
