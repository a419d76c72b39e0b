"""Creating a job: the one transaction that inserts a job and reserves its credit — for a kiosk's submission and
for an operator's retry alike.

Order of effects, so that a refused request leaves nothing behind:
1. what the style decides is checked without writing and, for a submission, without a round trip: the style
   (active; from `StyleCache`), the parameters, whether the model takes a photo (`plan_job`: 422);
2. the photo, if the style takes one, is written to storage under the job's input key (as uploaded: the submit
   step cleans it);
3. one transaction decides everything the account decides and writes the job: an Idempotency-Key already used,
   the style still as planned, the account (unknown 422), the event's rules (style offered 422, consent 422, the
   guest's photo cap 409, counted under the event's row lock so two kiosks cannot both take the last photo),
   the credit (conditional decrement 402) and the job, its `reserve` ledger row and its first transition row.
   On PostgreSQL that transaction is one statement (`_ACCEPT_SQL`, one round trip); on SQLite an ORM session;
4. if it refuses or fails, the stored photo is deleted;
5. once it commits, an idle dispatcher is woken (`Bus`), so the job is submitted in milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot import metrics
from photobot.bus import Bus
from photobot.db import Database, on_commit
from photobot.db.models import (
    Event,
    Job,
    JobState,
    JobTransition,
    Style,
    User,
    UTCDateTime,
    new_job_id,
    table_of,
    utcnow,
)
from photobot.expiring import ExpiringMap
from photobot.jobs import credits
from photobot.problems import Problem, validation_error
from photobot.providers.models import SPECS, InvalidParameter, normalise_params, provider_for_style
from photobot.settings import Settings
from photobot.storage import Storage
from photobot.storage.keys import input_key, upload_key

STYLE_CACHE_TTL_S = 30.0
STYLE_FACTS = (
    "active", "cost", "prompt", "model", "provider", "aspect_ratio", "resolution", "output_format", "reference_keys",
)  # fmt: skip
"""The columns of a style that `plan_job` reads: the accepting transaction checks they are still what the plan saw."""


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


def style_not_offered(style_id: str) -> Problem:
    return Problem(422, "style_not_offered", "Invalid request", f"This event does not offer style {style_id!r}.",
                   extra={"field": "style"})  # fmt: skip


def unknown_account(kind: str) -> Problem:
    return Problem(422, f"unknown_{kind}", "Invalid request", f"No such {kind}.")


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


class StyleCache:
    """Active styles by id, read from the database at most every `ttl_s` per process, so planning a submission
    costs no round trip.

    Its staleness is harmless: whatever a plan read from here is checked again by the transaction that accepts the
    job (`STYLE_FACTS` compared with the stored row, on PostgreSQL inside the one statement), and when the row
    changed meanwhile the job is planned again from the stored row — a style deactivated or edited a moment ago is
    refused or used as it is now, never as it was. Unknown and inactive styles are never cached (a style created or
    activated a moment ago works at once); the catalogue is small, so the cache needs no bound."""

    def __init__(self, ttl_s: float = STYLE_CACHE_TTL_S) -> None:
        self._entries: ExpiringMap[str, Style] = ExpiringMap(ttl_s)

    async def get(self, db: Database, style_id: str) -> Style | None:
        """The active style `style_id`, or None (unknown or inactive: read from the database, never cached)."""
        return self._entries.get(style_id) or await self.refresh(db, style_id)

    async def refresh(self, db: Database, style_id: str) -> Style | None:
        """Read the style now (a plan found it changed), replacing what was cached."""
        async with db.session() as session:
            style = await session.get(Style, style_id)
        if style is None or not style.active:
            self._entries.pop(style_id)
            return None
        self._entries.put(style_id, style)
        return style


def check_style_photo(
    style: Style | None, settings: Settings, *, has_photo: bool, default_provider: str | None = None
) -> None:
    """The photo rule alone, before a photo named by URL is fetched (`plan_job` applies it again, with the rest);
    an unknown style is left for `plan_job` to refuse."""
    if style is not None and style.active:
        model = provider_for_style(settings, style.provider, style.model, default=default_provider)[1]
        check_photo(style.id, model, has_photo)


@dataclass(frozen=True)
class Submission:
    """What a kiosk or an app asked for, before any style or account fact is read."""

    style_id: str
    aspect_ratio: str | None
    resolution: str | None
    output_format: str | None
    owner: tuple[int | None, int | None]
    token_id: int | None
    guest: Guest
    default_provider: str | None = None  # the live provider (`Providers.live`), for styles that do not name one
    has_photo: bool = True


@dataclass(frozen=True)
class Plan:
    """A submission's job spec and the style row it was planned from (perhaps cached): `create_job` checks, in the
    transaction that accepts the job, that the row is still what the plan saw, and plans again if it is not. A plan
    also means the event's style and consent rules apply (an operator's retry, a bare `JobSpec`, passed them once)."""

    asked: Submission
    style: Style
    spec: JobSpec
    styles: StyleCache  # where the style was read: refreshed when the row changed


def plan_job(style: Style | None, settings: Settings, asked: Submission) -> JobSpec:
    """Check the style (active), the parameters and the photo against the model (422), and decide every parameter
    of the job. What the account decides (owner, the event's rules, the credit) is the accepting transaction's."""
    if style is None or not style.active:
        raise Problem(422, "unknown_style", "Invalid request", f"No active style {asked.style_id!r}.")
    provider, model = provider_for_style(settings, style.provider, style.model, default=asked.default_provider)
    check_photo(style.id, model, asked.has_photo)
    try:
        params = normalise_params(
            model,
            asked.aspect_ratio or style.aspect_ratio,
            asked.resolution or style.resolution,
            asked.output_format or style.output_format,
        )
    except InvalidParameter as exc:
        raise Problem(422, "invalid_parameter", "Invalid request", str(exc), extra={"field": exc.field}) from None
    event_id, user_id = asked.owner
    guest = asked.guest
    return JobSpec(
        event_id=event_id, user_id=user_id, token_id=asked.token_id, style_id=style.id, cost=style.cost,
        provider=provider, model=model, prompt=style.prompt, aspect_ratio=params.aspect_ratio,
        resolution=params.resolution, output_format=params.output_format, reference_keys=list(style.reference_keys),
        guest_id=guest.guest_id, email=guest.email, phone=guest.phone,
        consent_at=utcnow() if guest.consent else None,
    )  # fmt: skip


async def plan_submission(styles: StyleCache, db: Database, settings: Settings, asked: Submission) -> Plan:
    """`plan_job` from the style cache: no round trip when the style was read in the last `ttl_s`."""
    style = await styles.get(db, asked.style_id)
    spec = plan_job(style, settings, asked)
    assert style is not None  # plan_job refused otherwise
    return Plan(asked, style, spec, styles)


async def find_idempotent(session: AsyncSession, token_id: int, key: str) -> Job | None:
    query = sa.select(Job).where(col(Job.token_id) == token_id, col(Job.idempotency_key) == key)
    return (await session.execute(query)).scalar_one_or_none()


class IdempotencyKeyUsed(Exception):
    """A job with this token's Idempotency-Key exists already (accepted earlier, or by a request racing this one):
    the caller replays it or answers 409."""


class _Refused(Exception):
    """The accepting transaction refused the job: `code` is its verdict (`_ACCEPT_SQL`'s names: `replay`,
    `style_changed`, `unknown_event`, `unknown_user`, `style_not_offered`, `consent_required`,
    `guest_limit_reached` with the `cap`, `no_credits`)."""

    def __init__(self, code: str, cap: int | None = None) -> None:
        super().__init__(code)
        self.code, self.cap = code, cap


@dataclass(frozen=True, slots=True)
class _Writing:
    """What one attempt of the accepting transaction writes and checks."""

    job: Job
    spec: JobSpec
    plan: Plan | None
    retry_of: str | None


async def create_job(
    db: Database,
    storage: Storage,
    bus: Bus,
    settings: Settings,
    planned: Plan | JobSpec,
    photo: Path | None,
    *,
    extension: str = "",
    content_type: str | None = None,
    idempotency_key: str | None = None,
    req_hash: str | None = None,
    retry_of: str | None = None,
    as_uploaded: bool = False,
) -> Job:
    """Store the photo (the store takes the file: `photo` is gone afterwards), then accept the job in one
    transaction; a refusal raises its problem (402, 409, 422) or `IdempotencyKeyUsed`, and deletes the photo.

    `planned`: a submission's `Plan` (the style is checked to be still as planned, in the database — when it is
    not, the plan's cache is refreshed and the job planned again — and the event's style and consent rules apply),
    or the `JobSpec` of an operator's retry. `photo` is None for a text-to-image job: it has no input key and
    nothing is stored.

    `as_uploaded`: the photo is the guest's file as received (only its type and size checked); it is stored under
    `upload_key` and the submit step cleans it before anything else happens to it.
    """
    job_id = new_job_id()
    key: str | None = None
    if photo is not None:
        key = (upload_key if as_uploaded else input_key)(job_id, extension)
        await storage.put_file(key, photo, content_type, move=True)
    plan = planned if isinstance(planned, Plan) else None
    spec = planned.spec if isinstance(planned, Plan) else planned
    try:
        for _ in range(3):  # the style changed under the plan: plan again from the stored row (twice at most)
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
            writing = _Writing(job, spec, plan, retry_of)
            try:
                if db.is_postgres:
                    await _accept_in_one_statement(db, writing)
                else:
                    await _accept_in_session(db, bus, writing)
            except _Refused as refused:
                if refused.code != "style_changed" or plan is None:
                    raise
                fresh = await plan.styles.refresh(db, plan.asked.style_id)
                spec = plan_job(fresh, settings, plan.asked)  # 422 if it is gone or no longer fits the request
                assert fresh is not None
                plan = Plan(plan.asked, fresh, spec, plan.styles)
                continue
            break
        else:
            raise RuntimeError(f"style {spec.style_id} kept changing while a job was accepted")
    except _Refused as refused:
        await _forget(storage, key)
        raise _problem(refused, spec) from None
    except BaseException:
        await _forget(storage, key)
        raise
    if db.is_postgres:
        bus.wake_dispatchers()  # committed: the statement was its own transaction (the session path wakes on commit)
    return job


def _problem(refused: _Refused, spec: JobSpec) -> Exception:
    code = refused.code
    if code == "replay":
        return IdempotencyKeyUsed()
    if code == "no_credits":
        return no_credits()
    if code == "guest_limit_reached":
        assert refused.cap is not None
        return guest_limit_reached(refused.cap)
    if code == "consent_required":
        return consent_required()
    if code == "style_not_offered":
        return style_not_offered(spec.style_id)
    if code in ("unknown_event", "unknown_user"):
        return unknown_account(code.removeprefix("unknown_"))
    raise AssertionError(f"unexpected refusal {code!r}")


async def _accept_in_session(db: Database, bus: Bus, writing: _Writing) -> None:
    """The accepting transaction as ORM statements (SQLite, whose writers `BEGIN IMMEDIATE` serialises), deciding
    in `_ACCEPT_SQL`'s order."""
    job, plan, spec = writing.job, writing.plan, writing.spec
    try:
        async with db.session() as session:
            key, token_id = job.idempotency_key, job.token_id
            if key is not None and token_id is not None and await find_idempotent(session, token_id, key):
                raise _Refused("replay")
            if plan is not None:
                stored = await session.get(Style, spec.style_id)
                if stored is None or _facts(stored) != _facts(plan.style):
                    raise _Refused("style_changed")
            await _check_account(session, spec, rules=plan is not None)
            session.add(job)
            await session.flush()
            try:
                await credits.reserve(session, job)
            except credits.NoCredits:
                raise _Refused("no_credits") from None
            note = f"retry of {writing.retry_of}" if writing.retry_of else None
            session.add(JobTransition(job_id=job.id, from_state=None, to_state=JobState.pending, note=note,
                                      at=job.created_at))  # fmt: skip
            if writing.retry_of is not None:
                session.add(JobTransition(job_id=writing.retry_of, from_state=JobState.failed,
                                          to_state=JobState.failed, note=f"retried as {job.id}",
                                          at=job.created_at))  # fmt: skip
            on_commit(session, bus.wake_dispatchers)
    except IntegrityError:
        if job.idempotency_key is not None:
            raise _Refused("replay") from None
        raise


async def _check_account(session: AsyncSession, spec: JobSpec, *, rules: bool) -> None:
    """The account exists; an event's rules (style offered and consent for a submission; the guest's cap always).
    The cap is counted under the event's row lock (held until commit; the reservation would take it anyway), so
    concurrent submissions of one guest are counted one after the other."""
    if spec.event_id is None:
        if await session.get(User, spec.user_id) is None:
            raise _Refused("unknown_user")
        return
    event = await session.get(Event, spec.event_id)
    if event is None:
        raise _Refused("unknown_event")
    if rules and event.styles and spec.style_id not in event.styles:
        raise _Refused("style_not_offered")
    if rules and event.consent_required and spec.consent_at is None:
        raise _Refused("consent_required")
    if event.max_photos_per_guest is None or not (spec.guest_id or spec.email or spec.phone):
        return
    capped = sa.select(col(Event.max_photos_per_guest)).where(col(Event.id) == spec.event_id).with_for_update()
    cap = (await session.execute(capped)).scalar_one_or_none()
    if cap is not None and await guest_photo_count(session, spec.event_id, spec) >= cap:
        raise _Refused("guest_limit_reached", cap)


def _facts(style: Style) -> tuple[Any, ...]:
    return tuple(getattr(style, name) for name in STYLE_FACTS)


# --- PostgreSQL: the accepting transaction as one statement ------------------------------------------------------
_JOBS = table_of(Job)
_JSON_COLUMNS = frozenset(c.name for c in _JOBS.columns if isinstance(c.type, sa.JSON))
_TIME_COLUMNS = frozenset(c.name for c in _JOBS.columns if isinstance(c.type, UTCDateTime | sa.DateTime))
_JOB_COLUMNS = ", ".join(c.name for c in _JOBS.columns)
_JOB_VALUES = ", ".join(
    f"CAST(:j_{c.name} AS JSON)" if c.name in _JSON_COLUMNS else f":j_{c.name}" for c in _JOBS.columns
)


# The session path's rules as one statement, run as its own transaction. All CTEs share the statement's snapshot.
# `event` locks the paying event's row and reads its newest version (a row updated since the snapshot is re-read
# once its updater committed), so the balance, the cap and the rules are the current ones, and the job's insert,
# the decrement and the ledger row all depend on the one verdict. The guest's count is the one fact not on that
# row: it is read from the snapshot, which may miss a job committed by a submission that held the lock before us.
# Every accepted job writes the event row (the decrement, even of 0), so that can only happen when the row's
# version changed since the snapshot (`seen` <> `event`): then, and only when the cap applies, the verdict is
# `stale` and the caller runs the statement again after taking the lock in a transaction of its own, whose
# snapshot then holds every such job. An Idempotency-Key used meanwhile loses the insert (ON CONFLICT DO
# NOTHING): nothing is charged, and the caller replays the winner's job.
_ACCEPT_SQL = sa.text(
    f"""
WITH style AS (
    SELECT active AND cost = :s_cost AND prompt = :s_prompt AND model = :s_model
       AND provider IS NOT DISTINCT FROM :s_provider AND aspect_ratio IS NOT DISTINCT FROM :s_aspect_ratio
       AND resolution IS NOT DISTINCT FROM :s_resolution AND output_format IS NOT DISTINCT FROM :s_output_format
       AND CAST(reference_keys AS JSONB) = CAST(:s_reference_keys AS JSONB) AS fresh
    FROM styles WHERE id = :j_style_id
), seen AS (
    SELECT CAST(xmin AS TEXT) AS version FROM events WHERE id = :j_event_id
), event AS (
    SELECT CAST(xmin AS TEXT) AS version, credits, CAST(styles AS JSONB) AS styles, consent_required,
           max_photos_per_guest AS cap
    FROM events WHERE id = :j_event_id FOR UPDATE
), app_user AS (
    SELECT credits FROM users WHERE id = :j_user_id FOR UPDATE
), existing AS (
    SELECT 1 FROM jobs WHERE token_id = :j_token_id AND idempotency_key = :j_idempotency_key
), photos AS (
    SELECT count(*) AS n FROM jobs
    WHERE :identified AND EXISTS (SELECT 1 FROM event WHERE cap IS NOT NULL)
      AND jobs.event_id = :j_event_id AND jobs.state <> 'failed'
      AND (jobs.guest_id = :g_guest_id OR lower(jobs.email) = lower(CAST(:g_email AS TEXT)) OR jobs.phone = :g_phone)
), verdict AS (
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM existing) THEN 'replay'
        WHEN :rules AND NOT COALESCE((SELECT fresh FROM style), false) THEN 'style_changed'
        WHEN :j_event_id IS NOT NULL AND event.credits IS NULL THEN 'unknown_event'
        WHEN :j_user_id IS NOT NULL AND app_user.credits IS NULL THEN 'unknown_user'
        WHEN :rules AND jsonb_array_length(event.styles) > 0
             AND NOT event.styles @> jsonb_build_array(:j_style_id) THEN 'style_not_offered'
        WHEN :rules AND event.consent_required AND :j_consent_at IS NULL THEN 'consent_required'
        WHEN :identified AND event.cap IS NOT NULL AND event.version <> seen.version THEN 'stale'
        WHEN :identified AND event.cap IS NOT NULL AND (SELECT n FROM photos) >= event.cap THEN 'guest_limit_reached'
        WHEN COALESCE(event.credits, app_user.credits) < :j_cost THEN 'no_credits'
    END AS refusal, event.cap
    FROM (SELECT 1) AS one LEFT JOIN event ON true LEFT JOIN seen ON true LEFT JOIN app_user ON true
), job AS (
    INSERT INTO jobs ({_JOB_COLUMNS})
    SELECT {_JOB_VALUES} FROM verdict WHERE verdict.refusal IS NULL
    ON CONFLICT (token_id, idempotency_key) DO NOTHING
    RETURNING id
), charged_event AS (
    UPDATE events SET credits = credits - :j_cost WHERE id = :j_event_id AND EXISTS (SELECT 1 FROM job)
    RETURNING id
), charged_user AS (
    UPDATE users SET credits = credits - :j_cost WHERE id = :j_user_id AND :j_cost > 0 AND EXISTS (SELECT 1 FROM job)
    RETURNING id
), ledger AS (
    INSERT INTO credit_ledger (event_id, user_id, job_id, delta, reason, created_at)
    SELECT :j_event_id, :j_user_id, job.id, -:j_cost, 'reserve', :j_created_at FROM job WHERE :j_cost > 0
), history AS (
    INSERT INTO job_transitions (job_id, from_state, to_state, note, at)
    SELECT job.id, NULL, 'pending', CAST(:note AS VARCHAR), :j_created_at FROM job
), retried AS (
    INSERT INTO job_transitions (job_id, from_state, to_state, note, at)
    SELECT CAST(:retry_of AS VARCHAR), 'failed', 'failed', CAST(:retry_note AS VARCHAR), :j_created_at FROM job
    WHERE CAST(:retry_of AS VARCHAR) IS NOT NULL
)
SELECT verdict.refusal, verdict.cap, EXISTS (SELECT 1 FROM job) AS inserted FROM verdict
"""
).bindparams(
    *(sa.bindparam(f"j_{name}", type_=UTCDateTime()) for name in sorted(_TIME_COLUMNS)),
    sa.bindparam("rules", type_=sa.Boolean()),
    sa.bindparam("identified", type_=sa.Boolean()),
)
_LOCK_EVENT_SQL = sa.text("SELECT 1 FROM events WHERE id = :event_id FOR UPDATE")


async def _accept_in_one_statement(db: Database, writing: _Writing) -> None:
    """Run `_ACCEPT_SQL` (one round trip); raises `_Refused` with its verdict. A `stale` verdict (the guest cap
    applies and the event's row changed since the statement's snapshot) runs it again behind the lock."""
    job, plan, spec = writing.job, writing.plan, writing.spec
    params: dict[str, Any] = {
        f"j_{c.name}": json.dumps(getattr(job, c.name)) if c.name in _JSON_COLUMNS else getattr(job, c.name)
        for c in _JOBS.columns
    }
    style = plan.style if plan is not None else None
    for name in STYLE_FACTS[1:]:
        value = getattr(style, name) if style is not None else None
        params[f"s_{name}"] = json.dumps(value) if name == "reference_keys" else value
    params.update(
        rules=plan is not None,
        identified=bool(spec.guest_id or spec.email or spec.phone),
        g_guest_id=spec.guest_id or None, g_email=spec.email or None, g_phone=spec.phone or None,
        note=f"retry of {writing.retry_of}" if writing.retry_of else None,
        retry_of=writing.retry_of, retry_note=f"retried as {job.id}" if writing.retry_of else None,
    )  # fmt: skip
    refusal, cap, inserted = await db.fetchrow(_ACCEPT_SQL, params)
    if refusal == "stale":
        async with db.engine.begin() as conn:
            await conn.execute(_LOCK_EVENT_SQL, {"event_id": spec.event_id})
            row = (await conn.execute(_ACCEPT_SQL, params)).one()
        refusal, cap, inserted = row
        assert refusal != "stale", "the event's row was locked before the statement's snapshot"
    account = "event" if spec.event_id is not None else "user"
    if refusal is not None:
        if refusal == "no_credits":
            metrics.credit_operation("reserve_refused", account)
        raise _Refused(refusal, cap)
    if not inserted:  # the Idempotency-Key was used by a request that committed during this statement
        raise _Refused("replay")
    if spec.cost:
        metrics.credit_operation("reserve", account, spec.cost)


async def _forget(storage: Storage, key: str | None) -> None:
    if key is not None:
        await storage.delete(key)
