"""Applying what a provider says about a task to its job: a verified callback, or a status the reconciler polled.

Both are the same decision — success moves the job to `finishing` with the result URLs (the finish step confirms
and downloads), failure ends it through `outcomes.fail` — so both go through `apply_report`. A callback adds its
own bookkeeping first: it is recorded once per (provider, task, outcome), so duplicates change nothing, and a task
id that belongs to another job is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot import metrics
from photobot.bus import Bus
from photobot.db import Database, on_commit
from photobot.db.models import Job, JobState, UTCDateTime, WebhookEvent, utcnow
from photobot.db.upsert import insert_ignore
from photobot.jobs import outcomes
from photobot.jobs.states import transition
from photobot.providers.base import CallbackEvent, TaskStatus
from photobot.settings import Settings

log = logging.getLogger(__name__)

CallbackOutcome = Literal["accepted", "duplicate", "late", "unknown", "ignored"]
STORED_PAYLOAD_KEYS = (
    "taskId", "task_id", "request_id", "state", "status", "failCode", "failMsg", "code", "msg", "model",
)  # fmt: skip


class ForeignTask(Exception):
    """The callback names a task that belongs to another job: somebody is mixing tokens and tasks up."""


@dataclass(frozen=True, slots=True)
class Report:
    """What a provider said about a task, from a callback or a status poll."""

    task_id: str
    outcome: Literal["success", "fail"]
    result_urls: tuple[str, ...] = ()
    fail_code: str | None = None
    fail_message: str | None = None
    needs_fetch: bool = False

    @classmethod
    def of_callback(cls, event: CallbackEvent) -> Report:
        return cls(event.task_id, event.outcome, event.result_urls, event.fail_code, event.fail_message,
                   event.needs_fetch)  # fmt: skip

    @classmethod
    def of_status(cls, task_id: str, status: TaskStatus) -> Report:
        assert status.state in ("success", "fail")
        outcome: Literal["success", "fail"] = "success" if status.state == "success" else "fail"
        return cls(task_id, outcome, status.result_urls, status.fail_code, status.fail_message)


async def apply_report(
    session: AsyncSession,
    bus: Bus,
    settings: Settings,
    job: Job,
    report: Report,
    from_states: Iterable[JobState],
    *,
    note: str | None = None,
    callback: bool = False,
) -> bool:
    """Success → `finishing` (and wake a dispatcher); failure → `failed`. False when the job was not in
    `from_states`."""
    now = utcnow()
    if report.outcome == "fail":
        message = report.fail_message or "The provider could not make the photo."
        code = outcomes.provider_fail_code(report.fail_code, report.fail_message)
        return await outcomes.fail(session, bus, settings, job.id, code, message, from_states=from_states) is not None
    meta = dict(job.provider_meta)
    if report.needs_fetch:
        meta["needs_fetch"] = True  # take the URL from the provider's status next time, not from the report
    received: dict[str, Any] = (
        {"provider_task_id": job.provider_task_id or report.task_id, "callback_at": now} if callback else {}
    )
    moved = await transition(
        session, job.id, from_states, JobState.finishing, note=note, next_attempt_at=now,
        result_urls=list(report.result_urls), provider_meta=meta, attempts=0, **received,
    )  # fmt: skip
    if moved is None:
        return False
    on_commit(session, bus.wake_dispatchers)  # the finish step is due now (live pages still say "processing")
    return True


async def apply_callback(
    db: Database, bus: Bus, settings: Settings, provider: str, job_id: str, event: CallbackEvent
) -> CallbackOutcome:
    """Apply a verified callback; returns what happened (for logs and metrics).

    Raises ForeignTask when the task belongs to another job of ours. On PostgreSQL a success — nearly every
    callback — is one statement run as its own transaction (`_SUCCESS_SQL`: one round trip); a failure, and
    everything on SQLite, goes through the session path, which shares the same rules.
    """
    if db.is_postgres and event.outcome == "success":
        return await _apply_success_in_one_statement(db, bus, provider, job_id, event)
    async with db.session() as session:
        return await _apply_in_session(session, bus, settings, provider, job_id, event)


async def _apply_in_session(
    session: AsyncSession, bus: Bus, settings: Settings, provider: str, job_id: str, event: CallbackEvent
) -> CallbackOutcome:
    job = await session.get(Job, job_id)
    if job is None:
        return "unknown"
    if job.provider != provider:  # a token can only name its own provider, but the job is the truth
        raise ForeignTask()
    other = (
        await session.execute(
            sa.select(col(Job.id)).where(
                col(Job.provider) == job.provider, col(Job.provider_task_id) == event.task_id, col(Job.id) != job_id
            )
        )
    ).first()
    if other is not None:
        raise ForeignTask()
    if job.provider_task_id and job.provider_task_id != event.task_id:
        # A task no job of ours tracks, e.g. from an earlier submit attempt of this job whose answer was lost:
        # answer 200 so the provider stops retrying, and change nothing.
        return "unknown"
    row = {
        "provider": provider, "task_id": event.task_id, "outcome": event.outcome, "job_id": job_id,
        "received_at": utcnow(), "payload": _stored_payload(event.raw),
    }  # fmt: skip
    if not await insert_ignore(session, WebhookEvent, [row], ["provider", "task_id", "outcome"]):
        return "duplicate"
    if JobState(job.state).final:
        return "late"
    if event.outcome == "fail" and not job.provider_task_id:
        job.provider_task_id = event.task_id  # keep the bookkeeping of a failure that beat createTask's answer
        job.callback_at = utcnow()
        await session.flush()
    applied = await apply_report(session, bus, settings, job, Report.of_callback(event), CALLBACK_FROM, callback=True)
    return "accepted" if applied else "ignored"


CALLBACK_FROM = (JobState.submitting, JobState.waiting)

# The session path's rules as one PostgreSQL statement. Data-modifying CTEs all run against the statement's
# snapshot, and the UPDATE re-checks its row under lock, so a duplicate racing this one either loses the event
# insert (ON CONFLICT DO NOTHING) or finds the job already moved. `job` is read once and reports what decided.
_SUCCESS_SQL = sa.text(
    """
WITH job AS (
    SELECT id, state, provider, provider_task_id, state_changed_at FROM jobs WHERE id = :job_id
), other AS (
    SELECT 1 FROM jobs WHERE provider = :provider AND provider_task_id = :task_id AND id <> :job_id LIMIT 1
), ev AS (
    INSERT INTO webhook_events (provider, task_id, outcome, job_id, received_at, payload)
    SELECT :provider, :task_id, 'success', :job_id, :now, CAST(:payload AS JSON) FROM job
    WHERE job.provider = :provider AND NOT EXISTS (SELECT 1 FROM other)
      AND (job.provider_task_id IS NULL OR job.provider_task_id = :task_id)
    ON CONFLICT (provider, task_id, outcome) DO NOTHING
    RETURNING id
), moved AS (
    UPDATE jobs SET state = 'finishing', state_changed_at = :now, updated_at = :now, next_attempt_at = :now,
        attempts = 0, callback_at = :now, result_urls = CAST(:urls AS JSON),
        provider_task_id = COALESCE(jobs.provider_task_id, :task_id),
        provider_meta = CASE WHEN :needs_fetch
            THEN CAST(CAST(jobs.provider_meta AS JSONB) || '{"needs_fetch": true}' AS JSON)
            ELSE jobs.provider_meta END
    WHERE jobs.id = :job_id AND jobs.state IN ('submitting', 'waiting') AND EXISTS (SELECT 1 FROM ev)
    RETURNING jobs.id
), history AS (
    INSERT INTO job_transitions (job_id, from_state, to_state, at)
    SELECT :job_id, job.state, 'finishing', :now FROM job, moved
)
SELECT job.state, job.provider, job.provider_task_id, job.state_changed_at,
       EXISTS (SELECT 1 FROM other) AS foreign_task, EXISTS (SELECT 1 FROM ev) AS recorded,
       EXISTS (SELECT 1 FROM moved) AS moved
FROM (SELECT 1) AS one LEFT JOIN job ON true
"""
).bindparams(sa.bindparam("now", type_=UTCDateTime()), sa.bindparam("needs_fetch", type_=sa.Boolean()))


async def _apply_success_in_one_statement(
    db: Database, bus: Bus, provider: str, job_id: str, event: CallbackEvent
) -> CallbackOutcome:
    now = utcnow()
    params = {
        "job_id": job_id, "provider": provider, "task_id": event.task_id, "now": now,
        "payload": json.dumps(_stored_payload(event.raw)), "urls": json.dumps(list(event.result_urls)),
        "needs_fetch": event.needs_fetch,
    }  # fmt: skip
    row = await db.fetchrow(_SUCCESS_SQL, params)
    state, job_provider, task_id, entered, foreign, recorded, moved = row
    if state is None:
        return "unknown"
    if job_provider != provider or foreign:
        raise ForeignTask()
    if task_id and task_id != event.task_id:
        return "unknown"
    if not recorded:
        return "duplicate"
    if JobState(state).final:
        return "late"
    if not moved:
        return "ignored"
    metrics.job_transition(state, JobState.finishing.value, entered, now)  # timestamptz: aware
    bus.wake_dispatchers()  # the finish step is due now (live pages still say "processing")
    return "accepted"


def _stored_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Keep the stored payload small and free of anything secret-looking (it is for operators' eyes)."""
    data = payload.get("data") if isinstance(payload.get("data"), dict) else payload
    assert isinstance(data, dict)
    return {k: data[k] for k in STORED_PAYLOAD_KEYS if k in data}
