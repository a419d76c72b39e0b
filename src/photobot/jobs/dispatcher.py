"""The dispatcher: claims due jobs with a lease and runs their next step, with bounded concurrency.

A job is due when it is in flight (`pending`, `submitting`, `waiting`, `finishing`), its `next_attempt_at`
has passed (or its deadline has, outside `finishing`), and nobody holds a live lease on it. Claiming sets
`lease_owner` and `lease_until` in one statement guarded by those same conditions; on PostgreSQL the candidates are read
`FOR UPDATE SKIP LOCKED`, so competing workers never wait on each other, and on SQLite the whole claim is
one `BEGIN IMMEDIATE` transaction. A worker that dies simply stops renewing: once its lease expires the job
is due again and another worker takes it over. While a step runs, its lease is renewed every third of
`lease_s`, so a slow step (a large download) is never taken over by a second, live worker.

The loop sleeps until a wake-up (a job accepted, a callback received, via `Bus`) or `poll_interval_s`.
On shutdown it stops claiming, lets running steps finish for a grace period, then releases what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col

from photobot.db import execute_dml
from photobot.db.models import Job, UTCDateTime, due_clause, from_row, table_of, utcnow
from photobot.jobs.steps import Engine
from photobot.providers.assembly import Providers
from photobot.runtime import Runtime

log = logging.getLogger(__name__)


def _claim_statement(skip_locked: bool) -> sa.Update:
    # placeholders (value None), filled per call; `due_clause` takes the moment as an SQL expression here
    now = sa.bindparam("now", None, type_=UTCDateTime())
    due = due_clause(now)
    candidates = (
        sa.select(col(Job.id))
        .where(due)
        .order_by(col(Job.next_attempt_at))
        .limit(sa.bindparam("limit", None, type_=sa.Integer()))
    )
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    jobs = table_of(Job)
    return (
        sa.update(jobs)
        .where(jobs.c.id.in_(candidates.scalar_subquery()), due)
        .values(lease_owner=sa.bindparam("owner", None), lease_until=sa.bindparam("until", None, type_=UTCDateTime()))
        .returning(*jobs.c)
    )


_CLAIM = {True: _claim_statement(skip_locked=True), False: _claim_statement(skip_locked=False)}
"""The claim, built once (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one `BEGIN IMMEDIATE` transaction)."""


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Dispatcher:
    def __init__(
        self,
        runtime: Runtime,
        providers: Providers,
        *,
        worker_id: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.worker_id = worker_id or new_worker_id()
        self.engine = Engine(runtime, providers, self.worker_id)
        self.concurrency = self.settings.worker_concurrency
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[str] = set()  # job ids whose step runs here: their leases are renewed
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._slot_free = asyncio.Event()

    async def claim(self, limit: int) -> list[Job]:
        """Lease up to `limit` due jobs to this worker; returns them as the lease left them.

        One statement: `UPDATE … WHERE id IN (the oldest due ids) AND due RETURNING *`, so a wake costs one round
        trip and the step starts with the row in hand instead of reading it again. On PostgreSQL the candidates are
        locked `FOR UPDATE SKIP LOCKED` (competing workers take different jobs) and the statement runs straight on
        the pooled driver connection as its own transaction (`Database.fetch`: the ORM's BEGIN, COMMIT and row
        mapping cost more than the statement, ~3 ms of a callback's way to `completed` on this machine); the outer
        `due` re-check is what makes a lease exclusive on both databases: a row someone else leased meanwhile is no
        longer due.
        """
        if limit <= 0:
            return []
        now = utcnow()
        params = {"now": now, "limit": limit, "owner": self.worker_id,
                  "until": now + timedelta(seconds=self.settings.lease_s)}  # fmt: skip
        db = self.runtime.db
        if db.is_postgres:
            return [from_row(Job, row) for row in await db.fetch(_CLAIM[True], params)]
        async with db.session() as session:
            result = await session.execute(_CLAIM[False], params)
            return [from_row(Job, row) for row in result.mappings()]

    async def run_once(self) -> int:
        """Claim as many jobs as there are free slots and start their steps; returns how many started."""
        jobs = await self.claim(self.concurrency - len(self._tasks))
        for job in jobs:
            task = asyncio.create_task(self._run_step(job), name=f"job-{job.id}")
            self._tasks.add(task)
            task.add_done_callback(self._step_done)
        return len(jobs)

    def _step_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_free.set()
        # The step released its lease: a callback that arrived meanwhile (say, before createTask answered)
        # made the job due while it was leased, and its wake-up found nothing to claim. Look again now
        # instead of at the next poll.
        self.runtime.bus.wake_event.set()

    async def _run_step(self, job: Job) -> None:
        self._running.add(job.id)
        try:
            await self.engine.run(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Engine.run backs a crashing step off itself; this is a crash outside any step (releasing the lease).
            log.exception(
                "step crashed outside the job's step; retried when its lease expires", extra={"job_id": job.id}
            )
        finally:
            self._running.discard(job.id)

    async def renew_leases(self) -> int:
        """Extend the leases of the jobs whose steps run here; returns how many were renewed."""
        ids = list(self._running)
        if not ids:
            return 0
        async with self.runtime.db.session() as session:
            return await execute_dml(
                session,
                sa.update(Job)
                .where(col(Job.id).in_(ids), col(Job.lease_owner) == self.worker_id)
                .values(lease_until=utcnow() + timedelta(seconds=self.settings.lease_s)),
            )

    async def _renew_forever(self) -> None:
        """A step may outlast its lease (a slow download): renew every third of it while this worker lives,
        so nobody else takes the job over; a dead worker stops renewing and the lease runs out."""
        interval = max(0.5, self.settings.lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew_leases()
            except Exception as exc:  # the database may be restarting: try again next round
                log.warning("dispatcher: lease renewal failed", extra={"error": type(exc).__name__})

    async def run_forever(self) -> None:
        wake = self.runtime.bus.wake_event
        log.info("dispatcher started", extra={"worker_id": self.worker_id, "concurrency": self.concurrency})
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._renew_forever(), name="lease-renewal")
        while not self._stopping.is_set():
            wake.clear()
            self._slot_free.clear()
            try:
                # then wait: a claim that came back short found everything due, and one that filled every slot
                # waits for a slot; a step ending meanwhile sets the wake-up itself (`_step_done`), so nothing due
                # waits for the poll
                await self.run_once()
            except Exception as exc:  # the database may be restarting: keep going
                log.warning("dispatcher: claim failed", extra={"error": type(exc).__name__})
            waiters = [asyncio.ensure_future(self._stopping.wait()), asyncio.ensure_future(wake.wait())]
            if len(self._tasks) >= self.concurrency:
                waiters.append(asyncio.ensure_future(self._slot_free.wait()))
            try:
                await asyncio.wait(waiters, timeout=self.settings.poll_interval_s,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming; give running steps `grace_s` to finish, then cancel them and release their leases."""
        self._stopping.set()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._heartbeat
            self._heartbeat = None
        with contextlib.suppress(Exception):
            async with self.runtime.db.session() as session:
                await session.execute(
                    sa.update(Job)
                    .where(col(Job.lease_owner) == self.worker_id)
                    .values(lease_owner=None, lease_until=None)
                )
        log.info("dispatcher stopped", extra={"worker_id": self.worker_id})
