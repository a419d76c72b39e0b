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
import logging
import tempfile
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col

from photobot.db.models import IN_FLIGHT, Job, JobState, WebhookEvent, utcnow
from photobot.intake import ImageError
from photobot.jobs import outcomes
from photobot.jobs.callbacks import Report, apply_report
from photobot.jobs.states import transition, update_in_state
from photobot.links import callback_url
from photobot.logs import bind
from photobot.metrics import STEP_CRASHES
from photobot.net.errors import AddressNotAllowed, FetchError, UrlNotAllowed
from photobot.providers.assembly import Providers, ProviderSlot
from photobot.providers.base import GenerationRequest, TaskStatus
from photobot.providers.errors import NoKeyAvailable, ProviderError
from photobot.providers.inputs import is_public_url
from photobot.providers.keypool import PoolKey
from photobot.providers.retry import backoff_s
from photobot.runtime import Runtime
from photobot.storage.base import content_type_for
from photobot.storage.keys import input_key, is_upload, result_key

log = logging.getLogger(__name__)


async def _discard(download: asyncio.Task[Path]) -> None:
    """Cancel a download nobody will use and delete what it wrote (whatever it ended with)."""
    download.cancel()
    await asyncio.wait({download})  # never raises for the task's own outcome; our own cancellation still propagates
    if not download.cancelled() and download.exception() is None:
        download.result().unlink(missing_ok=True)


MAX_FINISH_ATTEMPTS = 5
CRASH_BACKOFF_CAP_S = 300.0
RECONCILE_MAX_INTERVAL_S = 60.0


class Engine:
    def __init__(self, runtime: Runtime, providers: Providers, worker_id: str) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.providers = providers
        self.worker_id = worker_id
        self._ended: set[str] = set()  # jobs whose step ended them here: the final transition cleared the lease

    # --- dispatch ----------------------------------------------------------------------------------
    async def run(self, job: Job) -> None:
        """Run the step the job's state calls for; `job` is the row as the dispatcher's claim leased it to this
        worker (read back by the claim itself: no second read before the step starts)."""
        if job.lease_owner != self.worker_id:
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
            except Exception as exc:
                await self._crashed(job, exc)
            finally:
                if job.id in self._ended:  # completed or failed here: `outcomes` released the lease in that commit
                    self._ended.discard(job.id)
                else:
                    await self.release_lease(job.id)

    async def _crashed(self, job: Job, exc: Exception) -> None:
        """A step raised an unexpected error (the input photo gone, storage down, a bug).

        Releasing the lease alone would make the job due again at once — a hot loop of tracebacks until the
        deadline. Instead it backs off like a transient error (the one `backoff_s`, at least a second) and, after
        `step_crash_limit` crashes, fails with `internal_error`, which releases the credit and tells the guest.
        """
        crashes, limit, base = job.crashes + 1, self.settings.step_crash_limit, self.settings.step_crash_backoff_s
        STEP_CRASHES.labels(state=job.state).inc()
        log.error(
            "step crashed (%s), attempt %d of %d", type(exc).__name__, crashes, limit,
            exc_info=exc, extra={"state": job.state},
        )  # fmt: skip
        if crashes >= limit:
            message = "Photobot could not process this photo."
            await self.fail(job, "internal_error", message, from_states=list(IN_FLIGHT))
            return
        delay = base + backoff_s(crashes, base_s=base, cap_s=CRASH_BACKOFF_CAP_S)
        async with self.runtime.db.session() as session:
            await session.execute(
                sa.update(Job)
                .where(col(Job.id) == job.id, col(Job.lease_owner) == self.worker_id)
                .values(crashes=crashes, next_attempt_at=utcnow() + timedelta(seconds=delay))
            )

    async def release_lease(self, job_id: str) -> None:
        async with self.runtime.db.session() as session:
            await session.execute(
                sa.update(Job)
                .where(col(Job.id) == job_id, col(Job.lease_owner) == self.worker_id)
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
        if job.input_key is not None and is_upload(job.input_key):
            prepared = await self.prepare_input(job)
            if prepared is None:
                return
            job = prepared
        try:
            request, key = await self._generation_request(job, slot)
            # The submitter retries transient errors with backoff; never past the job's deadline.
            async with asyncio.timeout(max(0.1, (job.deadline_at - utcnow()).total_seconds())):
                submission = await slot.submitter.submit(request, key=key)
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
                    .where(col(Job.id) == job.id, sa.or_(col(Job.provider_task_id).is_(None),
                                                    col(Job.provider_task_id) == result.task_id))
                    .values(provider_task_id=result.task_id, provider_key_id=submission.key_id,
                            provider_meta=result.meta, submitted_at=now)
                )  # fmt: skip
            else:
                outcomes.job_changed(session, self.runtime.bus, job, JobState.waiting)
        log.info("job submitted", extra={"task_id": result.task_id, "provider": slot.name})

    async def prepare_input(self, job: Job) -> Job | None:
        """Clean the guest's upload into the photo the provider gets, in the image process pool (decode, EXIF
        orientation, metadata stripped, downscaled), store it under `input_key`, point the job at it and delete
        the upload. None when the job is no longer ours to submit.

        An upload that turns out not to decode fails the job with `invalid_image` (the credit is released and the
        guest told). After a crash it simply runs again: the keys are deterministic.
        """
        assert job.input_key is not None
        storage = self.runtime.storage
        tmp_dir = self.settings.var_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="upload-", delete=False) as handle:
            source = Path(handle.name)
        processed = None
        try:
            await storage.download_to(job.input_key, source)
            try:
                processed = await self.runtime.images.process(source)
            except ImageError as exc:
                message = exc.detail or "The photo could not be read."
                await self.fail(job, "invalid_image", message, from_states=[JobState.submitting])
                return None
            key = input_key(job.id, processed.extension)
            await storage.put_file(key, processed.path, processed.content_type, move=True)
        finally:
            source.unlink(missing_ok=True)
            if processed is not None:
                processed.path.unlink(missing_ok=True)
        async with self.runtime.db.session() as session:
            ours = await update_in_state(
                session, job.id, [JobState.submitting], expect_lease=self.worker_id, input_key=key
            )
        if not ours:  # expired or failed by an operator meanwhile: retention knows only the row's key
            await storage.delete(key)
            return None
        await storage.delete(job.input_key)  # the upload, with its metadata
        job.input_key = key
        return job

    async def _generation_request(self, job: Job, slot: ProviderSlot) -> tuple[GenerationRequest, PoolKey | None]:
        """The createTask request: the cleaned photo and the style's reference images as URLs (none at all for a
        text-to-image job, which has no input key), the prompt, the parameters and the tokenized callback URL; and
        the key taken to upload inputs through the provider's API (None when the provider reads our signed URLs):
        createTask then uses that same key, one key per job."""
        storage, ttl = self.runtime.storage, max(self.settings.signed_url_ttl_s, self.settings.job_timeout_s)
        urls = []
        pool_key = None
        for key in [*([job.input_key] if job.input_key else []), *job.reference_keys]:
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
        callback = callback_url(self.settings.public_base_url, slot.name, token)
        request = GenerationRequest(
            model=job.model,
            prompt=job.prompt,
            image_urls=tuple(urls),
            aspect_ratio=job.aspect_ratio,
            resolution=job.resolution,
            output_format=job.output_format,
            callback_url=callback,
        )
        return request, pool_key

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
        when = utcnow() + timedelta(seconds=backoff_s(job.attempts, base_s=2.0, cap_s=60.0))
        if when >= job.deadline_at:
            await self.fail(job, code, message, from_states=[JobState.submitting])
            return
        async with self.runtime.db.session() as session:
            await transition(
                session, job.id, [JobState.submitting], JobState.pending, note=f"retry after {code}",
                next_attempt_at=when, error_code=code, error_message=message,
            )  # fmt: skip

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
        if not status.final:
            await self._schedule_reconcile(job)
            return
        report = Report.of_status(job.provider_task_id, status)
        async with self.runtime.db.session() as session:
            moved = await apply_report(
                session, self.runtime.bus, self.settings, job, report, [JobState.waiting], note="reconciled"
            )
        if moved and status.state == "success":
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
        """Confirm, download, check and store the result; then complete, settle and plan notifications.

        When the callback brought a result URL and the provider must confirm it (kie's recordInfo), the download
        starts at once, alongside the confirmation: it is kept only if the provider confirms that same URL, and
        thrown away otherwise, so a forged callback still never gets its image stored.
        """
        slot = self.providers.get(job.provider)
        urls = list(job.result_urls)
        must_confirm = self.settings.kie_confirm_results and slot.name == "kie"
        early: asyncio.Task[Path] | None = None
        try:
            if confirmed is None and (must_confirm or not urls or job.provider_meta.get("needs_fetch")):
                if urls and not job.provider_meta.get("needs_fetch"):
                    early = asyncio.create_task(self._download(slot, urls[0]))
                confirmed = await slot.submitter.fetch_status(
                    job.provider_task_id or "", job.provider_meta, job.provider_key_id
                )
            if confirmed is not None:
                if confirmed.state == "fail":
                    await self.fail(job, outcomes.provider_fail_code(confirmed.fail_code, confirmed.fail_message),
                                    confirmed.fail_message or "Generation failed.",
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
            if early is not None and urls[0] == job.result_urls[0]:
                path, early = await early, None
            else:
                path = await self._download(slot, urls[0])
            stored = await self._keep(job, path)
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
        finally:
            if early is not None:  # not confirmed, or the step failed: the early download is not ours to keep
                await _discard(early)
        await self.complete(job, *stored)

    async def _download(self, slot: ProviderSlot, url: str) -> Path:
        """The result, streamed to a temp file through the SSRF-safe fetcher (the caller owns the file)."""
        tmp_dir = self.settings.var_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="result-", delete=False) as handle:
            path = Path(handle.name)
        try:
            await self.providers.result_fetcher.stream_to_file(
                url, path, max_bytes=self.settings.max_result_bytes, allowed_hosts=slot.result_hosts
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    async def _keep(self, job: Job, path: Path) -> tuple[str, str]:
        """Check the downloaded result really is an image, and hand it to storage (which takes the file)."""
        try:
            content_type, _, _ = await self.runtime.images.verify(path)
            key = result_key(job.id, content_type)
            await self.runtime.storage.put_file(key, path, content_type, move=True)
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
                next_attempt_at=utcnow() + timedelta(seconds=backoff_s(attempts, base_s=1.0, cap_s=30.0)),
            )  # fmt: skip

    async def _back_to_waiting(self, job: Job) -> None:
        """The provider says the task is not done: the "success" that sent the job here was early or forged.

        Its duplicate slot is freed with the move, or the provider's real success callback would be taken for a
        repeat of it and ignored, leaving the photo to the reconciler.
        """
        async with self.runtime.db.session() as session:
            moved = await transition(
                session, job.id, [JobState.finishing], JobState.waiting, note="provider not done yet",
                next_attempt_at=utcnow() + timedelta(seconds=2),
            )  # fmt: skip
            if moved is not None and job.provider_task_id:
                await session.execute(
                    sa.delete(WebhookEvent).where(
                        col(WebhookEvent.provider) == job.provider,
                        col(WebhookEvent.task_id) == job.provider_task_id,
                        col(WebhookEvent.outcome) == "success",
                    )
                )

    async def complete(self, job: Job, key: str, content_type: str) -> None:
        async with self.runtime.db.session() as session:
            done = await outcomes.complete(
                session, self.runtime.bus, self.settings, job.id, result_key=key, content_type=content_type
            )
        if done is not None:
            self._ended.add(job.id)
        if done is None and (await self._reload(job.id)).state == JobState.failed:
            # failed meanwhile (an operator, a forgotten guest): the photo we stored is nobody's. (Another worker
            # completing it first wrote the same deterministic key: that one stays.)
            await self.runtime.storage.delete(key)

    # --- fail / expire -----------------------------------------------------------------------------
    async def expire(self, job: Job) -> None:
        async with self.runtime.db.session() as session:
            expired = await outcomes.expire(session, self.runtime.bus, self.settings, job.id)
        if expired is not None:
            self._ended.add(job.id)

    async def fail(self, job: Job, code: str, message: str, *, from_states: list[JobState]) -> bool:
        async with self.runtime.db.session() as session:
            failed = await outcomes.fail(
                session, self.runtime.bus, self.settings, job.id, code, message, from_states=from_states
            )
        if failed is not None:
            self._ended.add(job.id)
        return failed is not None

    # --- helpers -----------------------------------------------------------------------------------
    async def _reload(self, job_id: str) -> Job:
        async with self.runtime.db.session() as session:
            job = await session.get(Job, job_id)
        assert job is not None
        return job
