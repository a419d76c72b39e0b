"""The Notifier: sends due notifications and credit alerts, each at most once on success.

Rows are the queue. `run_due` claims due rows with a lease (a conditional UPDATE pending → sending that also
retakes `sending` rows whose lease ran out, i.e. whose worker died), sends them through Apprise with bounded
concurrency and then records the outcome with another conditional UPDATE that only applies while the lease
is still ours: `sent` (with `sent_at`) only when Apprise reported success; otherwise `pending` again with an
exponential backoff, or `failed` with the last error after `max_attempts`. A `sent` row is never claimed
again; only `resend` (on purpose) puts it back to `pending`.

Credit alerts have no lease column, so while an alert is not yet sent its `sent_at` holds the time it may
next be tried (pending) or the end of its lease (sending); once sent it is the real send time.

Nothing here raises into the caller: `run_due` logs and counts what went wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from photobot.db import Database
from photobot.models import CreditAlert, Event, Job, Notification, Style, utcnow
from photobot.notify.channels import ChannelNotConfigured, build_delivery, describe_target, family
from photobot.notify.delivery import AppriseSender, SendResult
from photobot.notify.masking import Scrubber, install_scrub_filter
from photobot.notify.rendering import event_context, job_context, render_message
from photobot.settings import Settings

log = logging.getLogger("photobot.notify")

N = Notification.__table__  # type: ignore[attr-defined]
A = CreditAlert.__table__  # type: ignore[attr-defined]

MetricsCallback = Callable[[str, str], None]
"""Called with (channel family: email|whatsapp|push|alert, outcome: sent|retry|failed|skipped)."""


class PhotoStorage(Protocol):
    """The two storage calls notifications need (see photobot.storage)."""

    async def download_to(self, key: str, path: Path) -> None: ...

    async def url(self, key: str, expires_s: int) -> str: ...


class Sender(Protocol):
    async def send(
        self, urls: list[str], *, title: str, body: str, body_format: str = ..., attachments: list[Path] = ...
    ) -> SendResult: ...


@dataclass(frozen=True)
class _Claim:
    id: int
    lease_until: datetime
    attempts: int


@dataclass(frozen=True)
class _NotificationClaim(_Claim):
    job_id: str
    channel: str
    kind: str
    target: str


@dataclass(frozen=True)
class _AlertClaim(_Claim):
    event_id: int
    threshold: int


def scrubber_for(settings: Settings) -> Scrubber:
    """A scrubber that also knows our notification secrets (SMTP URL password, WhatsApp token)."""
    secrets: list[str | None] = []
    if settings.smtp_url is not None:
        from urllib.parse import urlsplit

        secrets.append(urlsplit(settings.smtp_url.get_secret_value()).password)
    if settings.whatsapp_token is not None:
        secrets.append(settings.whatsapp_token.get_secret_value())
    return Scrubber(secrets)


class Notifier:
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
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.send_timeout_s = send_timeout_s
        # A lease must outlive the send it protects, or a second worker would send the same row again.
        self.lease_s = lease_s if lease_s is not None else max(float(settings.lease_s), 2 * send_timeout_s + 30)
        self.scrubber = scrubber_for(settings)
        self.sender: Sender = sender or AppriseSender(timeout_s=send_timeout_s, scrubber=self.scrubber)
        self._semaphore = asyncio.Semaphore(concurrency)
        install_scrub_filter("apprise", self.scrubber)

    # --- the loop ----------------------------------------------------------------------------------

    async def run_due(self, limit: int = 50) -> int:
        """Claim and send what is due now (notifications and credit alerts); returns how many were handled."""
        try:
            notifications = await self._claim_notifications(limit)
            alerts = await self._claim_alerts(limit)
        except Exception:
            log.exception("claiming notifications failed")
            return 0
        tasks = [self._deliver_notification(c) for c in notifications] + [self._deliver_alert(c) for c in alerts]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    async def run_forever(self, stop_event: asyncio.Event, wake_event: asyncio.Event, *, batch: int = 50) -> None:
        """Run until `stop_event`; wake early on `wake_event` (set it after planning), else poll."""
        while not stop_event.is_set():
            wake_event.clear()
            handled = await self.run_due(batch)
            if handled:
                continue
            await _wait_any(stop_event, wake_event, timeout=self.settings.poll_interval_s)

    async def resend(self, job_id: str, channel: str) -> Notification:
        """Put one channel of a job back to `pending` on purpose (also after `sent`); see service.resend."""
        from photobot.notify.service import resend_notification

        return await resend_notification(self.database, job_id, channel, settings=self.settings)

    # --- claiming ----------------------------------------------------------------------------------

    async def _claim_notifications(self, limit: int) -> list[_NotificationClaim]:
        now = utcnow()
        lease = now + timedelta(seconds=self.lease_s)
        due = sa.or_(
            sa.and_(N.c.state == "pending", sa.or_(N.c.next_attempt_at.is_(None), N.c.next_attempt_at <= now)),
            sa.and_(N.c.state == "sending", N.c.lease_until < now),
        )
        async with self.database.session() as session:
            query = sa.select(N.c.id).where(due).order_by(N.c.next_attempt_at, N.c.id).limit(limit)
            if self.database.is_postgres:
                query = query.with_for_update(skip_locked=True)
            ids = list((await session.execute(query)).scalars())
            if not ids:
                return []
            claimed = await session.execute(
                sa.update(N)
                .where(N.c.id.in_(ids), due)
                .values(state="sending", lease_until=lease, attempts=N.c.attempts + 1)
                .returning(N.c.id, N.c.attempts, N.c.job_id, N.c.channel, N.c.kind, N.c.target)
            )
            return [
                _NotificationClaim(
                    id=r.id,
                    lease_until=lease,
                    attempts=r.attempts,
                    job_id=r.job_id,
                    channel=r.channel,
                    kind=r.kind,
                    target=r.target,
                )
                for r in claimed
            ]

    async def _claim_alerts(self, limit: int) -> list[_AlertClaim]:
        now = utcnow()
        lease = now + timedelta(seconds=self.lease_s)
        due = sa.or_(
            sa.and_(A.c.state == "pending", sa.or_(A.c.sent_at.is_(None), A.c.sent_at <= now)),
            sa.and_(A.c.state == "sending", A.c.sent_at < now),
        )
        async with self.database.session() as session:
            query = sa.select(A.c.id).where(due).order_by(A.c.id).limit(limit)
            if self.database.is_postgres:
                query = query.with_for_update(skip_locked=True)
            ids = list((await session.execute(query)).scalars())
            if not ids:
                return []
            claimed = await session.execute(
                sa.update(A)
                .where(A.c.id.in_(ids), due)
                .values(state="sending", sent_at=lease, attempts=A.c.attempts + 1)
                .returning(A.c.id, A.c.attempts, A.c.event_id, A.c.threshold)
            )
            return [
                _AlertClaim(id=r.id, lease_until=lease, attempts=r.attempts, event_id=r.event_id, threshold=r.threshold)
                for r in claimed
            ]

    # --- sending notifications ---------------------------------------------------------------------

    async def _deliver_notification(self, claim: _NotificationClaim) -> None:
        async with self._semaphore:
            try:
                result = await self._send_notification(claim)
            except ChannelNotConfigured as exc:
                result = SendResult(False, str(exc), permanent=True)
            except Exception as exc:
                log.warning(
                    "notification send raised",
                    extra={"job_id": claim.job_id, "channel": claim.channel, "error": type(exc).__name__},
                )
                result = SendResult(False, self.scrubber(f"{type(exc).__name__}: {exc}")[:1000])
            await self._record_notification(claim, result)

    async def _send_notification(self, claim: _NotificationClaim) -> SendResult:
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
                log.warning("no signed image URL for notification", extra={"job_id": job.id})
        context = job_context(job, event, style, page_url=self.page_url(job), image_url=image_url)
        language = event.language if event else None
        message = render_message(claim.kind, language, event.templates if event else None, context)  # type: ignore[arg-type]
        delivery = build_delivery(
            claim.channel, claim.target, message, self.settings, language=language, kind=claim.kind
        )
        with tempfile.TemporaryDirectory(prefix="photobot-notify-") as tmp:
            attachments: list[Path] = []
            if delivery.attach_photo and job.result_key and self.storage is not None:
                # Attach by path: Apprise's in-memory attachments are unreliable across plugins.
                path = Path(tmp) / photo_filename(job)
                await self.storage.download_to(job.result_key, path)
                attachments.append(path)
            return await self.sender.send(
                [delivery.url],
                title=delivery.title,
                body=delivery.body,
                body_format=delivery.body_format,
                attachments=attachments,
            )

    async def _record_notification(self, claim: _NotificationClaim, result: SendResult) -> None:
        now = utcnow()
        values: dict[str, Any] = {"lease_until": None}
        if result.ok:
            outcome = "sent"
            values.update(state="sent", sent_at=now, last_error=None, next_attempt_at=None)
        elif result.permanent or claim.attempts >= self.max_attempts:
            outcome = "failed"
            values.update(state="failed", last_error=result.error, next_attempt_at=None)
        else:
            outcome = "retry"
            delay = self.backoff_s(claim.attempts)
            values.update(state="pending", last_error=result.error, next_attempt_at=now + timedelta(seconds=delay))
        stmt = (
            sa.update(N)
            .where(N.c.id == claim.id, N.c.state == "sending", N.c.lease_until == claim.lease_until)
            .values(**values)
        )
        applied = await self._write(stmt)
        fields = {
            "job_id": claim.job_id,
            "channel": claim.channel,
            "kind": claim.kind,
            "target": describe_target(claim.channel, claim.target),
            "attempt": claim.attempts,
        }
        if not applied:
            log.warning("notification lease lost before recording the outcome", extra={**fields, "outcome": outcome})
            return
        if outcome == "sent":
            log.info("notification sent", extra=fields)
        else:
            log.warning(f"notification {outcome}", extra={**fields, "error": result.error})
        self._count(family(claim.channel), outcome)

    # --- sending credit alerts ---------------------------------------------------------------------

    async def _deliver_alert(self, claim: _AlertClaim) -> None:
        async with self._semaphore:
            outcome_state: str | None = None
            try:
                async with self.database.session() as session:
                    event = await session.get(Event, claim.event_id)
                if event is None or not event.alert_urls:
                    outcome_state = "skipped"
                    result = SendResult(False, "event has no alert_urls", permanent=True)
                else:
                    context = {
                        "event": event_context(event),
                        "alert": {
                            "threshold": claim.threshold,
                            "credits": event.credits,
                            "granted": event.granted_total,
                        },
                    }
                    message = render_message("alert", event.language, event.templates, context)
                    result = await self.sender.send(list(event.alert_urls), title=message.subject, body=message.text)
            except Exception as exc:
                result = SendResult(False, self.scrubber(f"{type(exc).__name__}: {exc}")[:1000])
            await self._record_alert(claim, result, outcome_state)

    async def _record_alert(self, claim: _AlertClaim, result: SendResult, forced_state: str | None) -> None:
        now = utcnow()
        if forced_state:
            outcome, values = forced_state, {"state": forced_state, "last_error": result.error, "sent_at": None}
        elif result.ok:
            outcome, values = "sent", {"state": "sent", "sent_at": now, "last_error": None}
        elif result.permanent or claim.attempts >= self.max_attempts:
            outcome, values = "failed", {"state": "failed", "last_error": result.error, "sent_at": None}
        else:
            retry_at = now + timedelta(seconds=self.backoff_s(claim.attempts))
            outcome, values = "retry", {"state": "pending", "last_error": result.error, "sent_at": retry_at}
        stmt = (
            sa.update(A)
            .where(A.c.id == claim.id, A.c.state == "sending", A.c.sent_at == claim.lease_until)
            .values(**values)
        )
        if await self._write(stmt):
            fields = {"event_id": claim.event_id, "threshold": claim.threshold, "attempt": claim.attempts}
            log.log(logging.INFO if outcome == "sent" else logging.WARNING, f"credit alert {outcome}", extra=fields)
            self._count("alert", outcome)

    # --- helpers -----------------------------------------------------------------------------------

    def backoff_s(self, attempts: int) -> float:
        """Exponential backoff after the n-th failed attempt, capped, with a little jitter against herds."""
        delay = min(self.max_backoff_s, self.base_backoff_s * (2 ** max(0, attempts - 1)))
        return delay * random.uniform(1.0, 1.2)

    def page_url(self, job: Job) -> str:
        return f"{self.settings.public_base_url}/p/{job.public_id}"

    async def _write(self, stmt: Any) -> bool:
        """Run one outcome UPDATE; retried once, because losing it would send a delivered message again."""
        for attempt in (1, 2):
            try:
                async with self.database.session() as session:
                    result = await session.execute(stmt)
                    return bool(result.rowcount)
            except Exception:
                if attempt == 2:
                    log.exception("recording a notification outcome failed")
                    return False
                await asyncio.sleep(0.2)
        return False

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
