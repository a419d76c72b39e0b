"""Retention: guests' input photos go after `PHOTOBOT_INPUT_TTL_HOURS`, results after `PHOTOBOT_RESULT_TTL_DAYS`
(or the event's own `retention_days`).

`run_retention(runtime, stop)` runs in every worker (started by `Worker.running`) and calls `purge_once` every
few minutes. Both halves are idempotent, so several workers running them at once only repeat harmless deletes.

- Inputs (privacy, default 24 h): for final jobs created before the cut-off, the input photo is deleted from
  storage. The job row has no "input deleted" column, so the progress is a cursor (the `created_at` up to which
  inputs are gone) kept in storage under `retention/inputs.cursor`; the cursor never passes a job that is still
  in flight (the dispatcher fails those at their deadline, then the next pass takes them).
- Results (default 30 days after completion or failure; an event's `retention_days` overrides it): the result, its
  thumbnail and the input are deleted and `purged_at` is set (a conditional update, so one worker wins). The guest
  page then answers 410.

`erase_photos` is the one way to delete every photo of one job at once, for retention's callers and for the
operator's privacy actions (`services/privacy.py`: forget a guest, purge an event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from photobot.db import execute_dml
from photobot.db.models import FINAL, Event, Job, state_values, utcnow
from photobot.settings import Settings
from photobot.storage import Storage
from photobot.storage.base import ObjectNotFound
from photobot.storage.keys import RETENTION_CURSOR, job_photo_keys, thumb_key

if TYPE_CHECKING:  # annotations only: importing the runtime pulls httpx, Pillow and the fetcher into every CLI command
    from photobot.runtime import Runtime

log = logging.getLogger(__name__)

INTERVAL_S = 300.0
BATCH = 200
FINAL_VALUES = state_values(FINAL)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class PurgeReport:
    inputs_deleted: int = 0
    results_purged: int = 0


def retention_days(settings: Settings, event: Event | None) -> int:
    """How many days an event's photos are kept: its own `retention_days`, else the service's default."""
    if event is not None and event.retention_days:
        return event.retention_days
    return settings.result_ttl_days


def result_expiry(runtime: Runtime, job: Job, event: Event | None = None) -> datetime | None:
    """When the job's page and photo expire (None while the job is in flight); `event`: the job's event."""
    if job.completed_at is None or job.state not in FINAL_VALUES:
        return None
    return job.completed_at + timedelta(days=retention_days(runtime.settings, event))


def is_expired(runtime: Runtime, job: Job, now: datetime | None = None, event: Event | None = None) -> bool:
    if job.purged_at is not None:
        return True
    expiry = result_expiry(runtime, job, event)
    return expiry is not None and expiry <= (now or utcnow())


async def erase_photos(storage: Storage, job: Job) -> int:
    """Delete every object the job can own (input, upload, result, thumbnail, in any extension); returns how
    many existed. Idempotent: a second call finds nothing and deletes nothing."""
    deleted = 0
    for key in job_photo_keys(job.id, job.input_key, job.result_key):
        if await storage.exists(key):
            await storage.delete(key)
            deleted += 1
    return deleted


async def _read_cursor(runtime: Runtime) -> datetime:
    """Where the last pass stopped; the epoch on the first pass. A store that is down raises (skip this pass)."""
    chunks = []
    try:
        async for chunk in runtime.storage.iter_chunks(RETENTION_CURSOR):
            chunks.append(chunk)
        value = datetime.fromisoformat(b"".join(chunks).decode().strip())
    except (ObjectNotFound, ValueError, UnicodeDecodeError):
        return EPOCH
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _write_cursor(runtime: Runtime, value: datetime) -> None:
    await runtime.storage.put_bytes(RETENTION_CURSOR, value.isoformat().encode(), "text/plain")


async def _delete(runtime: Runtime, key: str | None) -> None:
    if key:
        await runtime.storage.delete(key)


async def purge_inputs(runtime: Runtime, now: datetime) -> int:
    cutoff = now - timedelta(hours=runtime.settings.input_ttl_hours)
    cursor = await _read_cursor(runtime)
    deleted = 0
    while True:
        async with runtime.db.session() as session:
            rows = (
                await session.execute(
                    sa.select(col(Job.id), col(Job.state), col(Job.input_key), col(Job.created_at))
                    .where(col(Job.created_at) >= cursor, col(Job.created_at) < cutoff)
                    .order_by(col(Job.created_at), col(Job.id))
                    .limit(BATCH)
                )
            ).all()
        if not rows:
            break
        blocked, start = False, cursor
        for _job_id, state, input_key, created_at in rows:
            if state not in FINAL_VALUES:
                blocked = True  # still in flight: its input is needed; resume here next time
                break
            await _delete(runtime, input_key)
            deleted += 1
            cursor = created_at
        if cursor != start:
            await _write_cursor(runtime, cursor)
        if blocked or len(rows) < BATCH or all(r.created_at == cursor for r in rows):
            break  # done, or blocked by a job in flight, or a whole batch with one timestamp (no spinning)
    return deleted


async def purge_results(runtime: Runtime, now: datetime) -> int:
    """Purge the results past their retention: the default for user jobs and events without their own
    `retention_days`, then each event that has one (few events do, so one pass each)."""
    async with runtime.db.session() as session:
        own = list(
            (
                await session.execute(
                    sa.select(col(Event.id), col(Event.retention_days)).where(col(Event.retention_days).is_not(None))
                )
            ).all()
        )
    default = sa.or_(col(Job.event_id).is_(None), col(Job.event_id).not_in([event_id for event_id, _ in own]))
    purged = await _purge_results_where(runtime, now, default, now - timedelta(days=runtime.settings.result_ttl_days))
    for event_id, days in own:
        purged += await _purge_results_where(runtime, now, col(Job.event_id) == event_id, now - timedelta(days=days))
    return purged


async def _purge_results_where(runtime: Runtime, now: datetime, which: sa.ColumnElement[bool], cutoff: datetime) -> int:
    purged = 0
    while True:
        async with runtime.db.session() as session:
            jobs = list(
                (
                    await session.execute(
                        sa.select(Job)
                        .where(
                            which,
                            col(Job.purged_at).is_(None),
                            col(Job.state).in_(FINAL_VALUES),
                            col(Job.completed_at) < cutoff,
                        )
                        .order_by(col(Job.completed_at))
                        .limit(BATCH)
                    )
                ).scalars()
            )
        for job in jobs:
            for key in (job.result_key, thumb_key(job.id), job.input_key):
                await _delete(runtime, key)
            async with runtime.db.session() as session:
                purged += await execute_dml(
                    session,
                    sa.update(Job).where(col(Job.id) == job.id, col(Job.purged_at).is_(None)).values(purged_at=now),
                )
        if len(jobs) < BATCH:
            break
    return purged


async def purge_once(runtime: Runtime, now: datetime | None = None) -> PurgeReport:
    now = now or utcnow()
    report = PurgeReport()
    report.inputs_deleted = await purge_inputs(runtime, now)
    report.results_purged = await purge_results(runtime, now)
    if report.inputs_deleted or report.results_purged:
        log.info(
            "retention pass",
            extra={"inputs_deleted": report.inputs_deleted, "results_purged": report.results_purged},
        )
    return report


async def run_retention(runtime: Runtime, stop: asyncio.Event, *, interval_s: float = INTERVAL_S) -> None:
    """Purge now and then every `interval_s` until `stop` is set; errors are logged and retried next time."""
    while not stop.is_set():
        try:
            await purge_once(runtime)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store being down must not kill the worker
            log.warning("retention pass failed", extra={"error": type(exc).__name__})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
