"""The Notifier: turns due rows into messages and sends them, each channel at most once on success.

`run_due` claims due notifications and credit alerts (see `queue`), renders each message (see `rendering`),
sends it through Apprise with bounded concurrency (see `delivery`) and records the outcome: `sent` only when
Apprise reported success; otherwise a retry with backoff, or `failed` with the last error after
`max_attempts`. A `sent` row is never claimed again; only `resend` (on purpose) puts it back to `pending`.
Nothing here raises into the caller: problems are logged, counted and stored as `last_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from photobot.db import Database
from photobot.db.models import Event, Job, Notification, Style
from photobot.links import page_url
from photobot.notify.channels import ChannelNotConfigured, build_delivery, describe_target, family
from photobot.notify.delivery import MAX_ERROR_CHARS, AppriseSender, SendResult
from photobot.notify.masking import Scrubber, install_scrub_filter
from photobot.notify.queue import (
    AlertClaim,
    NotificationClaim,
    RetryPolicy,
    claim_alerts,
    claim_notifications,
    record_alert,
    record_notification,
)
from photobot.notify.rendering import event_context, job_context, render_message
from photobot.settings import Settings

log = logging.getLogger("photobot.notify")

MetricsCallback = Callable[[str, str], None]
"""Called with (channel family: email|whatsapp|push|alert, outcome: sent|retry|failed|skipped)."""


class PhotoStorage(Protocol):
    """The two storage calls notifications need (see photobot.storage)."""

    async def download_to(self, key: str, path: Path) -> None: ...

    async def url(self, key: str, expires_s: int) -> str: ...


class Sender(Protocol):
    async def send(
        self,
        urls: Sequence[str],
        *,
        title: str,
        body: str,
        body_format: str = "text",
        attachments: Sequence[Path] = (),
    ) -> SendResult: ...


def scrubber_for(settings: Settings) -> Scrubber:
    """A scrubber that also knows our notification secrets (SMTP password, WhatsApp token)."""
    secrets: list[str | None] = []
    if settings.smtp_url is not None:
        secrets.append(urlsplit(settings.smtp_url.get_secret_value()).password)
    if settings.whatsapp_token is not None:
        secrets.append(settings.whatsapp_token.get_secret_value())
    return Scrubber(secrets)


class Notifier:
    """Sends what the notification tables say is due; one per worker process.

    `storage` provides the photo (`download_to`, `url`); `on_result` feeds metrics; `sender` replaces Apprise
    in unit tests. The lease defaults to `max(settings.lease_s, 2 * send_timeout_s + 30)` so a slow send is
    never taken over by a second worker while it is still running.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        storage: PhotoStorage | None,
        on_result: MetricsCallback | None = None,
        *,
        max_attempts: int = 5,
        base_backoff_s: float = 30.0,
        max_backoff_s: float = 3600.0,
        concurrency: int = 8,
        send_timeout_s: float = 60.0,
        lease_s: float | None = None,
        sender: Sender | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.storage = storage
        self.on_result = on_result
        self.policy = RetryPolicy(max_attempts, base_backoff_s, max_backoff_s)
        self.lease_s = lease_s if lease_s is not None else max(float(settings.lease_s), 2 * send_timeout_s + 30)
        self.scrubber = scrubber_for(settings)
        self.sender: Sender = sender or AppriseSender(timeout_s=send_timeout_s, scrubber=self.scrubber)
        self._semaphore = asyncio.Semaphore(concurrency)
        install_scrub_filter("apprise", self.scrubber)

    # --- the loop ----------------------------------------------------------------------------------

    async def run_due(self, limit: int = 50) -> int:
        """Claim and send what is due now (notifications and credit alerts); returns how many were handled."""
        try:
            notifications = await claim_notifications(self.database, limit, self.lease_s)
            alerts = await claim_alerts(self.database, limit, self.lease_s)
        except Exception:
            log.exception("claiming notifications failed")
            return 0
        tasks = [self._notification(c) for c in notifications] + [self._alert(c) for c in alerts]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    async def run_forever(self, stop_event: asyncio.Event, wake_event: asyncio.Event, *, batch: int = 50) -> None:
        """Run until `stop_event`; wake early on `wake_event` (set it after planning), else poll."""
        while not stop_event.is_set():
            wake_event.clear()
            if await self.run_due(batch):
                continue
            await _wait_any(stop_event, wake_event, timeout=self.settings.poll_interval_s)

    async def resend(self, job_id: str, channel: str) -> Notification:
        """Put one channel of a job back to `pending` on purpose (also after `sent`)."""
        from photobot.notify.service import resend_notification

        return await resend_notification(self.database, job_id, channel, settings=self.settings)

    # --- guest notifications -----------------------------------------------------------------------

    async def _notification(self, claim: NotificationClaim) -> None:
        async with self._semaphore:
            try:
                result = await self._send_notification(claim)
            except ChannelNotConfigured as exc:
                result = SendResult(False, str(exc), permanent=True)
            except Exception as exc:
                result = self._error(exc)
            outcome = await record_notification(self.database, claim, result, self.policy)
        fields = {
            "job_id": claim.job_id,
            "channel": claim.channel,
            "kind": claim.kind,
            "target": describe_target(claim.channel, claim.target),
            "attempt": claim.attempts,
        }
        if outcome is None:
            log.warning("notification lease lost before its outcome was recorded", extra=fields)
            return
        if outcome == "sent":
            log.info("notification sent", extra=fields)
        else:
            log.warning("notification %s", outcome, extra={**fields, "error": result.error})
        self._count(family(claim.channel), outcome)

    async def _send_notification(self, claim: NotificationClaim) -> SendResult:
        async with self.database.session() as session:
            job = await session.get(Job, claim.job_id)
            if job is None:
                return SendResult(False, "job not found", permanent=True)
            event = await session.get(Event, job.event_id) if job.event_id is not None else None
            style = await session.get(Style, job.style_id)
        image_url = None
        if claim.kind == "ready" and job.result_key and self.storage is not None:
            try:
                image_url = await self.storage.url(job.result_key, self.settings.signed_url_ttl_s)
            except Exception:
                log.warning("no signed image URL for the notification", extra={"job_id": job.id})
        page = page_url(self.settings.public_base_url, job.public_id)
        with_photo = claim.kind == "ready" and job.result_key is not None and self.storage is not None
        filename = photo_filename(job)
        context = job_context(job, event, style, page_url=page, image_url=image_url,
                              photo_cid=filename if with_photo else None)  # fmt: skip
        language = event.language if event else None
        message = render_message(claim.kind, language, event.templates if event else None, context)
        delivery = build_delivery(
            claim.channel, claim.target, message, self.settings, language=language, kind=claim.kind
        )
        with tempfile.TemporaryDirectory(prefix="photobot-notify-") as tmp:
            attachments: list[Path] = []
            if delivery.attach_photo and job.result_key and self.storage is not None:
                # Attach by path: Apprise's in-memory attachments are unreliable across plugins. The e-mail
                # shows it in the message too: its file name is the Content-ID the HTML's `cid:` names.
                path = Path(tmp) / filename
                await self.storage.download_to(job.result_key, path)
                attachments.append(path)
            return await self.sender.send(
                [delivery.url],
                title=delivery.title,
                body=delivery.body,
                body_format=delivery.body_format,
                attachments=attachments,
            )

    # --- organiser alerts --------------------------------------------------------------------------

    async def _alert(self, claim: AlertClaim) -> None:
        async with self._semaphore:
            skipped = False
            try:
                async with self.database.session() as session:
                    event = await session.get(Event, claim.event_id)
                if event is None or not event.alert_urls:
                    skipped = True
                    result = SendResult(False, "the event has no alert_urls", permanent=True)
                else:
                    alert = {"threshold": claim.threshold, "credits": event.credits, "granted": event.granted_total}
                    context = {"event": event_context(event), "alert": alert}
                    message = render_message("alert", event.language, event.templates, context)
                    result = await self.sender.send(list(event.alert_urls), title=message.subject, body=message.text)
            except Exception as exc:
                result = self._error(exc)
            outcome = await record_alert(self.database, claim, result, self.policy, skipped=skipped)
        if outcome is not None:
            fields = {"event_id": claim.event_id, "threshold": claim.threshold, "attempt": claim.attempts}
            level = logging.INFO if outcome == "sent" else logging.WARNING
            log.log(level, "credit alert %s", outcome, extra={**fields, "error": result.error})
            self._count("alert", outcome)

    # --- helpers -----------------------------------------------------------------------------------

    def _error(self, exc: Exception) -> SendResult:
        """An unexpected exception while preparing or sending: retryable, message scrubbed."""
        return SendResult(False, self.scrubber(f"{type(exc).__name__}: {exc}")[:MAX_ERROR_CHARS])

    def _count(self, channel_family: str, outcome: str) -> None:
        if self.on_result is None:
            return
        try:
            self.on_result(channel_family, outcome)
        except Exception:
            log.exception("notification metrics callback failed")


def photo_filename(job: Job) -> str:
    """`photo.jpg` / `photo.png` / ...: the name the guest sees on the attachment."""
    content_type = job.result_content_type or mimetypes.guess_type(job.result_key or "")[0] or "image/jpeg"
    extension = mimetypes.guess_extension(content_type) or ".jpg"
    return f"photo{'.jpg' if extension in ('.jpe', '.jpeg') else extension}"


async def _wait_any(*events: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for waiter in waiters:
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
