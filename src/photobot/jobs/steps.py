"""The dispatcher's steps: submit, finish, reconcile, expire. Each moves one claimed job one step along.

Every effect is idempotent, so a step that crashes half-way can simply run again on another worker:
- state changes are conditional updates (`states.transition`);
- the result goes to a deterministic key (`results/{job_id}.{ext}`), so a second upload overwrites the first;
- the credit is settled or released in the same transaction as the final transition, which only one
  worker can win; notification rows are unique per job and channel.
Network I/O (provider calls, downloads) happens outside database transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import tempfile
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot import credits
from photobot.bus import EVENT_CHANNEL_PREFIX, JOB_CHANNEL_PREFIX
from photobot.intake import ImageError
from photobot.jobs.states import IN_FLIGHT, transition, update_in_state
from photobot.jobs.wiring import Providers, ProviderSlot
from photobot.logs import bind
from photobot.models import Event, Job, JobState, utcnow
from photobot.net.errors import AddressNotAllowed, FetchError, UrlNotAllowed
from photobot.notify import check_credit_alerts, plan_notifications
from photobot.providers.base import GenerationRequest, TaskStatus
from photobot.providers.errors import NoKeyAvailable, ProviderError
from photobot.providers.inputs import is_public_url
from photobot.runtime import Runtime
from photobot.storage.base import content_type_for

log = logging.getLogger(__name__)

MAX_FINISH_ATTEMPTS = 5
RECONCILE_MAX_INTERVAL_S = 60.0
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def backoff_s(attempt: int, base: float = 2.0, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(cap, base * (2 ** max(attempt, 0))))


class Engine:
    def __init__(
        self, runtime: Runtime, providers: Providers, worker_id: str, *, notify_wake: asyncio.Event | None = None
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.providers = providers
        self.worker_id = worker_id
        self.notify_wake = notify_wake or asyncio.Event()

    # --- dispatch ----------------------------------------------------------------------------------
    async def run(self, job_id: str) -> None:
        """Run the step the job's state calls for (the job is leased to this worker)."""
        async with self.runtime.db.session() as session:
            job = await session.get(Job, job_id)
        if job is None or job.lease_owner != self.worker_id:
            return
        with bind(job_id=job.id, task_id=job.provider_task_id, event_id=job.event_id):
            try:
                state = JobState(job.state)
                if state in (JobState.pending, JobState.submitting, JobState.waiting) and job.deadline_at <= utcnow():
                    await self.expire(job)
                elif state in (JobState.pending, JobState.submitting):
                    await self.submit(job)
                elif state == JobState.waiting:
                    await self.reconcile(job)
                elif state == JobState.finishing:
                    await self.finish(job)
            finally:
                await self.release_lease(job.id)

    async def release_lease(self, job_id: str) -> None:
        async with self.runtime.db.session() as session:
            await session.execute(
                sa.update(Job)
                .where(Job.id == job_id, Job.lease_owner == self.worker_id)
                .values(lease_owner=None, lease_until=None)
            )

    # --- submit ------------------------------------------------------------------------------------
    async def submit(self, job: Job) -> None:
        slot = self.providers.get(job.provider)
        async with self.runtime.db.session() as session:
            won = await transition(
                session, job.id, [JobState.pending, JobState.submitting], JobState.submitting,
                expect_lease=self.worker_id, attempts=job.attempts + 1,
            )  # fmt: skip
        if won is None:
            return
        try:
            request = await self._generation_request(job, slot)
            # The submitter retries transient errors with backoff; never past the job's deadline.
            async with asyncio.timeout(max(0.1, (job.deadline_at - utcnow()).total_seconds())):
                submission = await slot.submitter.submit(request)
        except TimeoutError:
            await self.expire(job)
            return
        except NoKeyAvailable as exc:
            await self._wait_for_key(job, exc)
            return
        except ProviderError as exc:
            if exc.retryable and not exc.code.endswith("generation_failed"):
                await self._retry_submit_later(job, exc.code, exc.message)
            else:
                await self.fail(job, exc.code, exc.message, from_states=[JobState.submitting])
            return
        now = utcnow()
        result = submission.result
        async with self.runtime.db.session() as session:
            moved = await transition(
                session, job.id, [JobState.submitting], JobState.waiting,
                provider_task_id=result.task_id, provider_key_id=submission.key_id, provider_meta=result.meta,
                submitted_at=now, next_attempt_at=now + timedelta(seconds=self.settings.reconcile_after_s),
                error_code=None, error_message=None,
            )  # fmt: skip
            if moved is None:
                # A callback got here first (it knew the job from the token): keep the bookkeeping.
                await session.execute(
                    sa.update(Job)
                    .where(Job.id == job.id, sa.or_(Job.provider_task_id.is_(None),
                                                    Job.provider_task_id == result.task_id))
                    .values(provider_task_id=result.task_id, provider_key_id=submission.key_id,
                            provider_meta=result.meta, submitted_at=now)
                )  # fmt: skip
        await self._cache_task(job, result.task_id)
        log.info("job submitted", extra={"task_id": result.task_id, "provider": slot.name})
        await self.publish(job)

    async def _generation_request(self, job: Job, slot: ProviderSlot) -> GenerationRequest:
        storage, ttl = self.runtime.storage, max(self.settings.signed_url_ttl_s, self.settings.job_timeout_s)
        urls = []
        pool_key = None
        for key in [job.input_key, *job.reference_keys]:
            url = await storage.url(key, ttl)
            if not await self._needs_upload(slot, url):
                urls.append(url)  # the provider reads our signed storage URL: no key, no transfer
                continue
            pool_key = pool_key or await slot.pool.acquire()
            data = b"".join([chunk async for chunk in storage.iter_chunks(key)])  # an input is a few MB at most
            filename = key.rsplit("/", 1)[-1]
            prepared = await slot.adapter.prepare_input(url, pool_key.secret, data=data, filename=filename,
                                                        content_type=content_type_for(key))  # fmt: skip
            urls.append(prepared.url)
        token = self.providers.tokens.issue(job.id, slot.name, job.deadline_at.timestamp())
        callback = f"{self.settings.public_base_url}/webhooks/{slot.name}?token={token}"
        return GenerationRequest(
            model=job.model,
            prompt=job.prompt,
            image_urls=tuple(urls),
            aspect_ratio=job.aspect_ratio,
            resolution=job.resolution,
            output_format=job.output_format,
            callback_url=callback,
        )

    async def _needs_upload(self, slot: ProviderSlot, url: str) -> bool:
        """Upload through the provider's API only when it cannot read our storage URL (or kie is told to)."""
        mode = self.settings.kie_input_upload if slot.name == "kie" else "auto"
        if mode != "auto":
            return mode == "always"
        return not await is_public_url(url, allow_private_networks=self.settings.allow_private_networks)

    async def _wait_for_key(self, job: Job, exc: NoKeyAvailable) -> None:
        if exc.retry_at >= job.deadline_at:
            await self.fail(job, "no_provider_key", "No usable provider API key before the deadline.",
                            from_states=[JobState.submitting])  # fmt: skip
            return
        log.warning("job waits for a usable API key", extra={"retry_at": exc.retry_at.isoformat()})
        async with self.runtime.db.session() as session:
            await transition(
                session, job.id, [JobState.submitting], JobState.pending, note="waiting for an API key",
                next_attempt_at=exc.retry_at, error_code="waiting_for_key",
                error_message="Waiting for a usable provider API key.",
            )  # fmt: skip

    async def _retry_submit_later(self, job: Job, code: str, message: str) -> None:
        when = utcnow() + timedelta(seconds=backoff_s(job.attempts))
        if when >= job.deadline_at:
            await self.fail(job, code, message, from_states=[JobState.submitting])
            return
        async with self.runtime.db.session() as session:
            await transition(
                session, job.id, [JobState.submitting], JobState.pending, note=f"retry after {code}",
                next_attempt_at=when, error_code=code, error_message=message,
            )  # fmt: skip

    async def _cache_task(self, job: Job, task_id: str) -> None:
        """taskId → job id in Redis (seed 002); a cache only: the database column is the truth."""
        redis = self.runtime.redis
        if redis is None:
            return
        ttl = max(60, int((job.deadline_at - utcnow()).total_seconds()) + 3600)
        with contextlib.suppress(Exception):
            await redis.set(f"photobot:task:{job.provider}:{task_id}", job.id, ex=ttl)

    # --- reconcile ---------------------------------------------------------------------------------
    async def reconcile(self, job: Job) -> None:
        """No callback yet: ask the provider. Lost callbacks cost latency, never a photo."""
        slot = self.providers.get(job.provider)
        if not job.provider_task_id:
            await self._schedule_reconcile(job)
            return
        try:
            status = await slot.submitter.fetch_status(job.provider_task_id, job.provider_meta, job.provider_key_id)
        except ProviderError as exc:
            log.info("reconcile: status check failed", extra={"code": exc.code})
            await self._schedule_reconcile(job)
            return
        if status.state == "fail":
            await self.fail(job, _fail_code(status), status.fail_message or "The provider could not make the photo.",
                            from_states=[JobState.waiting])  # fmt: skip
            return
        if status.state != "success":
            await self._schedule_reconcile(job)
            return
        async with self.runtime.db.session() as session:
            moved = await transition(
                session, job.id, [JobState.waiting], JobState.finishing, note="reconciled",
                result_urls=list(status.result_urls), next_attempt_at=utcnow(), attempts=0,
            )  # fmt: skip
        if moved is not None:
            job = await self._reload(job.id)
            await self.finish(job, confirmed=status)

    async def _schedule_reconcile(self, job: Job) -> None:
        since = (utcnow() - (job.submitted_at or job.created_at)).total_seconds()
        delay = min(RECONCILE_MAX_INTERVAL_S, max(2.0, since / 4))
        async with self.runtime.db.session() as session:
            await update_in_state(
                session, job.id, [JobState.waiting], next_attempt_at=utcnow() + timedelta(seconds=delay)
            )

    # --- finish ------------------------------------------------------------------------------------
    async def finish(self, job: Job, confirmed: TaskStatus | None = None) -> None:
        """Confirm, download, check and store the result; then complete, settle and plan notifications."""
        slot = self.providers.get(job.provider)
        urls = list(job.result_urls)
        must_confirm = self.settings.kie_confirm_results and slot.name == "kie"
        try:
            if confirmed is None and (must_confirm or not urls or job.provider_meta.get("needs_fetch")):
                confirmed = await slot.submitter.fetch_status(
                    job.provider_task_id or "", job.provider_meta, job.provider_key_id
                )
            if confirmed is not None:
                if confirmed.state == "fail":
                    await self.fail(job, _fail_code(confirmed), confirmed.fail_message or "Generation failed.",
                                    from_states=[JobState.finishing])  # fmt: skip
                    return
                if confirmed.state != "success":
                    await self._back_to_waiting(job)
                    return
                urls = list(confirmed.result_urls)
            if not urls:
                await self.fail(job, "result_missing", "The provider reported success without a result.",
                                from_states=[JobState.finishing])  # fmt: skip
                return
            stored = await self._store_result(job, slot, urls[0])
        except (UrlNotAllowed, AddressNotAllowed) as exc:
            if confirmed is not None:
                # The URL came from the provider's own answer to our key: asking again gives the same URL,
                # so retrying only delays the inevitable. Fail now with a clear code (the credit goes back).
                await self.fail(job, "result_url_not_allowed", exc.message, from_states=[JobState.finishing])
                return
            await self._finish_failed_attempt(job, "result_url_not_allowed", exc.message, confirm_next=True)
            return
        except FetchError as exc:
            await self._finish_failed_attempt(job, "result_download_failed", exc.message)
            return
        except ImageError as exc:
            await self._finish_failed_attempt(job, "result_invalid_image", exc.detail or exc.title)
            return
        except ProviderError as exc:
            await self._finish_failed_attempt(job, exc.code, exc.message)
            return
        await self.complete(job, *stored)

    async def _store_result(self, job: Job, slot: ProviderSlot, url: str) -> tuple[str, str]:
        tmp_dir = self.settings.var_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="result-", delete=False) as handle:
            path = Path(handle.name)
        try:
            await self.providers.result_fetcher.stream_to_file(
                url, path, max_bytes=self.settings.max_result_bytes, allowed_hosts=slot.result_hosts
            )
            content_type, _, _ = await self.runtime.images.verify(path)
            key = f"results/{job.id}.{EXTENSIONS.get(content_type, 'bin')}"
            await self.runtime.storage.put_file(key, path, content_type)
            return key, content_type
        finally:
            path.unlink(missing_ok=True)

    async def _finish_failed_attempt(self, job: Job, code: str, message: str, *, confirm_next: bool = False) -> None:
        attempts = job.attempts + 1
        if attempts >= MAX_FINISH_ATTEMPTS:
            await self.fail(job, code, message, from_states=[JobState.finishing])
            return
        log.info("finish attempt failed, will retry", extra={"code": code, "attempt": attempts})
        meta = dict(job.provider_meta)
        if confirm_next:
            meta["needs_fetch"] = True  # take the URL from recordInfo next time, not from the callback
        async with self.runtime.db.session() as session:
            await update_in_state(
                session, job.id, [JobState.finishing], attempts=attempts, provider_meta=meta,
                error_code=code, error_message=message,
                next_attempt_at=utcnow() + timedelta(seconds=backoff_s(attempts, base=1.0, cap=30.0)),
            )  # fmt: skip

    async def _back_to_waiting(self, job: Job) -> None:
        async with self.runtime.db.session() as session:
            await transition(
                session, job.id, [JobState.finishing], JobState.waiting, note="provider not done yet",
                next_attempt_at=utcnow() + timedelta(seconds=2),
            )  # fmt: skip

    async def complete(self, job: Job, result_key: str, content_type: str) -> None:
        now = utcnow()
        async with self.runtime.db.session() as session:
            won = await transition(
                session, job.id, [JobState.finishing], JobState.completed,
                result_key=result_key, result_content_type=content_type, completed_at=now,
                error_code=None, error_message=None, lease_owner=None, lease_until=None,
            )  # fmt: skip
            if won is None:
                return
            fresh = await session.get(Job, job.id)
            assert fresh is not None
            await credits.settle(session, fresh)
            event = await session.get(Event, fresh.event_id) if fresh.event_id else None
            await plan_notifications(session, fresh, event, self.settings, "ready")
            if event is not None:
                await check_credit_alerts(session, event)
        log.info("job completed", extra={"result_key": result_key})
        await self.publish(job, JobState.completed)
        self.notify_wake.set()

    # --- fail / expire -----------------------------------------------------------------------------
    async def expire(self, job: Job) -> None:
        await self.fail(job, "timeout", "The photo was not ready in time.",
                        from_states=[JobState.pending, JobState.submitting, JobState.waiting])  # fmt: skip

    async def fail(self, job: Job, code: str, message: str, *, from_states: list[JobState]) -> bool:
        async with self.runtime.db.session() as session:
            won = await fail_job(session, job.id, code, message, from_states, settings=self.settings)
        if won:
            log.info("job failed", extra={"code": code})
            await self.publish(job, JobState.failed)
            self.notify_wake.set()
        return won

    # --- helpers -----------------------------------------------------------------------------------
    async def _reload(self, job_id: str) -> Job:
        async with self.runtime.db.session() as session:
            job = await session.get(Job, job_id)
        assert job is not None
        return job

    async def publish(self, job: Job, state: JobState | None = None) -> None:
        await publish_job(self.runtime, job, state)


async def fail_job(
    session: AsyncSession,
    job_id: str,
    code: str,
    message: str,
    from_states: list[JobState] | tuple[JobState, ...] = IN_FLIGHT,
    *,
    settings: object,
) -> bool:
    """Fail the job (if still in `from_states`), release its credit and plan the apology, in one transaction."""
    won = await transition(
        session, job_id, from_states, JobState.failed,
        error_code=code[:64], error_message=message[:1000], completed_at=utcnow(),
        lease_owner=None, lease_until=None,
    )  # fmt: skip
    if won is None:
        return False
    job = await session.get(Job, job_id)
    assert job is not None
    await credits.release(session, job)
    event = await session.get(Event, job.event_id) if job.event_id else None
    await plan_notifications(session, job, event, settings, "failed")  # type: ignore[arg-type]
    return True


async def publish_job(runtime: Runtime, job: Job, state: JobState | None = None) -> None:
    """Tell live status pages (any web process) that the job changed."""
    status = (state or JobState(job.state)).public
    with contextlib.suppress(Exception):
        await runtime.bus.publish(JOB_CHANNEL_PREFIX + job.public_id, {"job_id": job.id, "status": status})
        if status == "completed" and job.event_id is not None:  # live gallery walls of the event
            await runtime.bus.publish(EVENT_CHANNEL_PREFIX + str(job.event_id), {"job_id": job.id})


def _fail_code(status: TaskStatus) -> str:
    return (
        "provider_generation_failed"
        if status.fail_code in (None, "", "500", "501")
        else (f"provider_failed_{status.fail_code}"[:64])
    )
