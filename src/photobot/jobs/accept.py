"""Accepting a job: the one transaction that creates a job and reserves its credit.

Order of effects, so that a refused request leaves nothing behind:
1. everything that can be checked without writing (style, parameters, owner, balance pre-check) is checked;
2. the processed photo is written to storage under `inputs/{job_id}.{ext}`;
3. one transaction inserts the job and reserves the credit (conditional decrement + `reserve` ledger row);
4. if that transaction fails (no credit, idempotency race, database error) the stored photo is deleted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot import credits
from photobot.api.schemas import JobFields
from photobot.intake import ProcessedImage
from photobot.models import ClientToken, Event, Job, JobState, JobTransition, Style, User, new_job_id, utcnow
from photobot.problems import Problem
from photobot.providers.models import InvalidParameter, normalise_params, spec_for
from photobot.runtime import Runtime


@dataclass(frozen=True)
class Plan:
    """Everything about the job that was decided before any write."""

    fields: JobFields
    style: Style
    provider: str
    model: str
    aspect_ratio: str
    resolution: str | None
    output_format: str
    event_id: int | None
    user_id: int | None


def no_credits() -> Problem:
    return Problem(402, "no_credits", "No credits left", "The account has no credits left for this style.")


async def plan_job(
    session: AsyncSession, runtime: Runtime, fields: JobFields, owner: tuple[int | None, int | None]
) -> Plan:
    style = await session.get(Style, fields.style)
    if style is None or not style.active:
        raise Problem(422, "unknown_style", "Invalid request", f"No active style {fields.style!r}.")
    provider = style.provider or runtime.settings.resolved_provider.value
    if provider == "simulator":
        provider = "kie"  # the simulator speaks kie.ai's API
    model = style.model
    if provider == "fal" and spec_for(model).provider != "fal":
        model = runtime.settings.fal_model
    try:
        params = normalise_params(
            model,
            fields.aspect_ratio or style.aspect_ratio,
            fields.resolution or style.resolution,
            fields.output_format or style.output_format,
        )
    except InvalidParameter as exc:
        raise Problem(422, "invalid_parameter", "Invalid request", str(exc), extra={"field": exc.field}) from None
    event_id, user_id = owner
    account = await session.get(Event, event_id) if event_id is not None else await session.get(User, user_id)
    if account is None:
        kind = "event" if event_id is not None else "user"
        raise Problem(422, f"unknown_{kind}", "Invalid request", f"No such {kind}.")
    if account.credits < style.cost:
        raise no_credits()
    return Plan(
        fields, style, provider, model, params.aspect_ratio, params.resolution, params.output_format, event_id, user_id
    )


def request_hash(fields: JobFields, image_sha256: str) -> str:
    canonical = json.dumps({**fields.model_dump(mode="json"), "image": image_sha256}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def find_idempotent(session: AsyncSession, token_id: int, key: str) -> Job | None:
    query = sa.select(Job).where(Job.token_id == token_id, Job.idempotency_key == key)
    return (await session.execute(query)).scalar_one_or_none()


class IdempotencyRace(Exception):
    """Another request with the same Idempotency-Key committed first."""


async def create_job(
    runtime: Runtime,
    client: ClientToken,
    plan: Plan,
    image: ProcessedImage,
    *,
    idempotency_key: str | None,
    req_hash: str | None,
) -> Job:
    """Store the photo, then insert the job and reserve its credit in one transaction."""
    settings = runtime.settings
    job_id = new_job_id()
    input_key = f"inputs/{job_id}.{image.extension}"
    await runtime.storage.put_file(input_key, image.path, image.content_type)
    now = utcnow()
    f = plan.fields
    job = Job(
        id=job_id,
        event_id=plan.event_id,
        user_id=plan.user_id,
        token_id=client.id,
        style_id=plan.style.id,
        cost=plan.style.cost,
        provider=plan.provider,
        model=plan.model,
        prompt=plan.style.prompt,
        aspect_ratio=plan.aspect_ratio,
        resolution=plan.resolution,
        output_format=plan.output_format,
        input_key=input_key,
        reference_keys=list(plan.style.reference_keys),
        state=JobState.pending,
        state_changed_at=now,
        next_attempt_at=now,
        deadline_at=now + timedelta(seconds=settings.job_timeout_s),
        guest_id=f.guest_id,
        email=str(f.email) if f.email else None,
        phone=f.phone,
        idempotency_key=idempotency_key,
        request_hash=req_hash,
        created_at=now,
        updated_at=now,
    )
    try:
        async with runtime.db.session() as session:
            session.add(job)
            await session.flush()
            await credits.reserve(session, job)
            session.add(JobTransition(job_id=job_id, from_state=None, to_state=JobState.pending, at=now))
    except credits.NoCredits:
        await runtime.storage.delete(input_key)
        raise no_credits() from None
    except IntegrityError:
        await runtime.storage.delete(input_key)
        if idempotency_key is not None:
            raise IdempotencyRace() from None
        raise
    except BaseException:
        await runtime.storage.delete(input_key)
        raise
    return job
