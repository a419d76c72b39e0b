"""How a job ends — completed or failed — with every effect that goes with it, whoever ends it.

The dispatcher (finish, expire, a fatal provider error), a failure callback, the admin API and the CLI all end jobs
through these two functions, so the effects can never differ by caller:

- in the caller's transaction: the conditional transition (only one caller can win), the credit (settle on
  completion, release on failure), the notification rows, for event jobs the credit alerts, and the outbound
  webhook messages (`job.completed` / `job.failed`, `credits.low`: the outbox);
- once that transaction commits (`db.on_commit`): live pages and gallery walls hear of it, and notifiers and webhook
  senders wake when it queued something for them, in every process (`Bus`).

`job_changed` is the same "tell live pages" for the in-flight moves (submitted, finishing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot import metrics
from photobot.bus import Bus
from photobot.db import on_commit
from photobot.db.models import (
    FINAL,
    IN_FLIGHT,
    Event,
    Job,
    JobState,
    UTCDateTime,
    from_row,
    labelled_columns,
    table_of,
    utcnow,
)
from photobot.jobs import credits
from photobot.jobs.states import transition, transition_ctes
from photobot.notify import check_credit_alerts, plan_notifications
from photobot.outbound import outbox
from photobot.providers.errors import CONTENT_BLOCKED, is_content_refusal
from photobot.settings import Settings

log = logging.getLogger(__name__)

GENERIC_FAILURES = (None, "", "500", "501")


def provider_fail_code(fail_code: str | None, message: str | None = None) -> str:
    """Our error code for a provider's failure code (and message): a content refusal is `content_blocked`, generic
    failures share one code, others keep theirs."""
    if is_content_refusal(fail_code, message):
        return CONTENT_BLOCKED
    if fail_code in GENERIC_FAILURES:
        return "provider_generation_failed"
    return f"provider_failed_{fail_code}"[:64]


def job_changed(session: AsyncSession, bus: Bus, job: Job, state: JobState) -> None:
    """After this transaction commits, tell live pages (and, for a completion, the event's walls)."""
    on_commit(session, lambda: bus.job_changed(job.id, job.public_id, state.public, job.event_id))


async def complete(
    session: AsyncSession, bus: Bus, settings: Settings, job_id: str, *, result_key: str, content_type: str
) -> Job | None:
    """`finishing → completed`: settle the credit, queue the guest's notifications; None if another caller won.

    On PostgreSQL the move, its history row and the settlement are one statement (`_COMPLETE`) that returns the job
    as it left it: with the event read and the commit, three round trips where the step-by-step form takes eight
    (about 5 ms of a callback's way to `completed` on this machine, docs/benchmarks.md). SQLite runs the same
    steps one by one inside its `BEGIN IMMEDIATE` transaction, where a statement costs no round trip.
    """
    now = utcnow()
    endpoints: list[Any] | None = None
    if session.get_bind().dialect.name == "postgresql":
        params = {"job_id": job_id, "now": now, "result_key": result_key, "content_type": content_type}
        row = (await session.execute(_COMPLETE, params)).mappings().first()
        if row is None:
            return None
        metrics.job_transition(row["previous"], JobState.completed.value, row["entered"], now)
        job = from_row(Job, row)
        credits.settled(job)
        # the event as this statement read it, after the settlement (which leaves the balance as it is): the credit
        # alerts check this very row's balance
        event = from_row(Event, row, _EVENT) if job.event_id is not None else None
        endpoints = row["listening"] or []
    else:
        won = await transition(
            session, job_id, [JobState.finishing], JobState.completed,
            result_key=result_key, result_content_type=content_type, completed_at=now,
            error_code=None, error_message=None, lease_owner=None, lease_until=None,
        )  # fmt: skip
        if won is None:
            return None
        job = await _reload(session, job_id)
        await credits.settle(session, job)
        event = await session.get(Event, job.event_id, populate_existing=True) if job.event_id is not None else None
    queued = bool(await plan_notifications(session, job, event, settings, "ready"))
    await outbox.job_ended(session, bus, settings.public_base_url, job, endpoints=endpoints)
    if event is not None:
        queued = bool(await check_credit_alerts(session, event, bus=bus)) or queued
    _ended(session, bus, job, JobState.completed, queued=queued)
    return job


def _complete_statement() -> sa.Select[Any]:
    """`complete` on PostgreSQL: the guarded move to `completed` with the result, its history row and the
    settlement ledger row, in one statement returning the job's new row with its event (columns `event__…`) and
    the webhook endpoints that hear about it (`listening`); nothing when another caller won."""
    moved, logged = transition_ctes(
        [JobState.finishing], JobState.completed,
        result_key=sa.bindparam("result_key", None, type_=sa.String()),
        result_content_type=sa.bindparam("content_type", None, type_=sa.String()),
        completed_at=sa.bindparam("now", None, type_=UTCDateTime()),
        error_code=None, error_message=None, lease_owner=None, lease_until=None,
    )  # fmt: skip
    listening = outbox.listening(moved.c.event_id).label("listening")
    return (
        sa.select(moved, *labelled_columns(Event, _EVENT), listening)
        .select_from(moved.outerjoin(_EVENTS, _EVENTS.c.id == moved.c.event_id))
        .add_cte(logged, credits.settle_cte(moved))
    )


_EVENTS, _EVENT = table_of(Event), "event__"
_COMPLETE = _complete_statement()


async def fail(
    session: AsyncSession,
    bus: Bus,
    settings: Settings,
    job_id: str,
    code: str,
    message: str,
    *,
    from_states: Iterable[JobState] = IN_FLIGHT,
) -> Job | None:
    """`… → failed`: release the credit, queue the apology (when the event wants one); None if not in `from_states`."""
    won = await transition(
        session, job_id, from_states, JobState.failed,
        error_code=code[:64], error_message=message[:1000], completed_at=utcnow(),
        lease_owner=None, lease_until=None,
    )  # fmt: skip
    if won is None:
        return None
    job = await _reload(session, job_id)
    await credits.release(session, job)
    event = await session.get(Event, job.event_id) if job.event_id is not None else None
    queued = bool(await plan_notifications(session, job, event, settings, "failed"))
    await outbox.job_ended(session, bus, settings.public_base_url, job)
    _ended(session, bus, job, JobState.failed, queued=queued)
    return job


async def expire(session: AsyncSession, bus: Bus, settings: Settings, job_id: str) -> Job | None:
    """The deadline passed before a result arrived (`finishing` never expires: the photo exists)."""
    return await fail(
        session, bus, settings, job_id, "timeout", "The photo was not ready in time.",
        from_states=IN_FLIGHT - {JobState.finishing},
    )  # fmt: skip


def _ended(session: AsyncSession, bus: Bus, job: Job, state: JobState, *, queued: bool) -> None:
    assert state in FINAL
    log.info("job %s", state.value, extra={"job_id": job.id, "code": job.error_code})
    job_changed(session, bus, job, state)
    if queued:  # a wake with nothing to send costs every notifier two claim transactions and finds nothing
        on_commit(session, bus.wake_notifiers)


async def _reload(session: AsyncSession, job_id: str) -> Job:
    job = await session.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job
