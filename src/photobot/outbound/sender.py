"""The worker's webhook sender: claim due deliveries, sign each message, POST it, record what happened.

Each attempt:
- renders the body `{"type", "timestamp", "data"}` from the stored message (for `job.completed` with a freshly
  signed `result_url`, so a link in a late retry still works) and signs it per Standard Webhooks 1.0 with every
  live secret of the endpoint (`signing.webhook_signature`; two signatures during a rotation's overlap);
- POSTs it through `SafeFetcher.post`: https and public addresses only (unless
  `PHOTOBOT_ALLOW_PRIVATE_NETWORKS`), checked on the addresses the name resolves to at that moment; the whole
  exchange bounded by `PHOTOBOT_WEBHOOK_TIMEOUT_S`; at most `MAX_ANSWER_BYTES` of the answer read; a redirect
  is a failure, never followed;
- records the outcome (`queue.record`): a 2xx is delivered; anything else retries on
  `PHOTOBOT_WEBHOOK_RETRY_SCHEDULE` until it is used up; an endpoint failing for `PHOTOBOT_WEBHOOK_DISABLE_AFTER_S`
  is disabled, and `send_alerts` tells the operator through `PHOTOBOT_OPERATOR_ALERT_URLS`.

Finished messages older than `PHOTOBOT_RESULT_TTL_DAYS` are deleted hourly (`queue.purge`): they name guests and
link to photos that are gone by then.

At-least-once: a worker killed mid-send leaves the delivery `sending` with a lease; once the lease expires any
worker sends it again, with the same `webhook-id`. Nothing here raises into the worker: problems are logged,
counted (`photobot_webhook_deliveries`) and stored on the delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from photobot import metrics
from photobot.db import Database, execute_dml
from photobot.db.models import Job, WebhookEndpoint, WebhookMessage, table_of, utcnow
from photobot.net.errors import FetchError, redact_url
from photobot.net.fetcher import SafeFetcher
from photobot.notify.delivery import AppriseSender
from photobot.notify.notifier import Sender as AlertSender
from photobot.notify.notifier import scrubber_for
from photobot.outbound.endpoints import signing_secrets
from photobot.outbound.outbox import JOB_COMPLETED, timestamp
from photobot.outbound.queue import Attempt, DeliveryClaim, claim, purge, record, skip
from photobot.runtime import Runtime
from photobot.settings import Settings
from photobot.signing import webhook_signature
from photobot.storage import Storage

log = logging.getLogger(__name__)

USER_AGENT = "photobot-webhooks/1"
MAX_ANSWER_BYTES = 4096  # the start of a failure's answer is kept in `last_error`; nobody needs more
ERROR_SNIPPET = 200
PURGE_INTERVAL_S = 3600.0
ALERT_CHECK_S = 60.0


@dataclass(frozen=True)
class Skipped:
    """Why a claimed delivery is ended without a request."""

    reason: str
    type: str


@dataclass
class Rows:
    """What a batch of claimed deliveries needs from the database, read once per batch."""

    endpoints: dict[int, WebhookEndpoint]
    messages: dict[str, WebhookMessage]
    jobs: dict[str, Job] = field(default_factory=dict)


def _id_in(model: Any, ids: set[Any]) -> Any:
    return table_of(model).c.id.in_(sorted(ids))


def render_body(message: WebhookMessage, data: dict[str, Any]) -> str:
    """The exact text that is signed and sent (compact JSON, UTF-8)."""
    payload = {"type": message.type, "timestamp": timestamp(message.created_at), "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class WebhookSender:
    """Sends what `webhook_deliveries` says is due; one per worker process (`Worker` runs `run_forever`)."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        storage: Storage | None,
        *,
        fetcher: SafeFetcher | None = None,
        ssl_context: ssl.SSLContext | None = None,
        alert_sender: AlertSender | None = None,
        concurrency: int = 8,
    ) -> None:
        self.database, self.settings, self.storage = database, settings, storage
        self._own_fetcher = fetcher is None
        self.fetcher = fetcher or SafeFetcher(
            allow_private=settings.allow_private_networks,
            connect_timeout=min(5.0, settings.webhook_timeout_s),
            timeout=settings.webhook_timeout_s,
            ssl_context=ssl_context,
            user_agent=USER_AGENT,
        )
        self.alert_sender: AlertSender = alert_sender or AppriseSender(timeout_s=10.0, scrubber=scrubber_for(settings))
        # A send takes at most the timeout: the lease outlives it, so only a dead worker's delivery is retaken.
        self.lease_s = settings.webhook_timeout_s + settings.lease_s
        self._semaphore = asyncio.Semaphore(concurrency)
        self._alerts_due, self._next_alert_check = True, 0.0

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> WebhookSender:
        """The worker's sender: its own connection pool (webhook endpoints are not provider hosts)."""
        return cls(runtime.db, runtime.settings, runtime.storage, ssl_context=runtime.ssl_context)

    async def aclose(self) -> None:
        if self._own_fetcher:
            await self.fetcher.aclose()

    # --- the loop ----------------------------------------------------------------------------------

    async def run_due(self, limit: int = 50) -> int:
        """Send what is due now and the pending operator alerts; returns how many deliveries were handled."""
        try:
            claims = await claim(self.database, limit, self.lease_s)
        except Exception:
            log.exception("claiming webhook deliveries failed")
            return 0
        if claims:
            try:
                rows = await self._load(claims)
            except Exception:
                log.exception("reading webhook messages failed")  # the leases run out; the deliveries come back
                return len(claims)
            await asyncio.gather(*(self._deliver(c, rows) for c in claims), return_exceptions=True)
        if self._alerts_due or time.monotonic() >= self._next_alert_check:
            # after a disable here at once; otherwise once a minute (another worker's, or one that failed to send)
            self._alerts_due, self._next_alert_check = False, time.monotonic() + ALERT_CHECK_S
            try:
                await self.send_alerts()
            except Exception:
                log.exception("sending webhook alerts failed")
        return len(claims)

    async def run_forever(self, stop: asyncio.Event, wake: asyncio.Event, *, batch: int = 50) -> None:
        """Until `stop`; wakes early on `wake` (`Bus.wake_webhook_senders`), else polls every poll interval; every
        `PURGE_INTERVAL_S` it also deletes messages older than `PHOTOBOT_RESULT_TTL_DAYS`."""
        next_purge = 0.0
        while not stop.is_set():
            wake.clear()
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + PURGE_INTERVAL_S
                await self.purge_old()
            if await self.run_due(batch):
                continue
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
            try:
                await asyncio.wait(waiters, timeout=self.settings.poll_interval_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter

    async def purge_old(self) -> int:
        """Delete finished messages older than the photos' retention; never raises."""
        try:
            purged = await purge(self.database, utcnow() - timedelta(days=self.settings.result_ttl_days))
        except Exception:
            log.exception("purging old webhook messages failed")
            return 0
        if purged:
            log.info("old webhook messages purged", extra={"count": purged})
        return purged

    # --- one delivery --------------------------------------------------------------------------------

    async def _deliver(self, claim_: DeliveryClaim, rows: Rows) -> None:
        async with self._semaphore:
            try:
                prepared = await self._prepare(claim_, rows)
            except Exception:
                log.exception("preparing a webhook message failed", extra={"message_id": claim_.message_id})
                return  # the lease runs out and the delivery is tried again
            if isinstance(prepared, Skipped):
                if await skip(self.database, claim_, prepared.reason):
                    log.warning("webhook delivery skipped: %s", prepared.reason, extra=self._fields(claim_))
                    metrics.webhook_attempt(prepared.type, "skipped")
                return
            endpoint, message, body = prepared
            attempt = await self._post(endpoint, message, body)
            recorded = await record(
                self.database, claim_, attempt, schedule=self.settings.webhook_retry_schedule,
                disable_after_s=self.settings.webhook_disable_after_s,
            )  # fmt: skip
        fields = {
            **self._fields(claim_), "type": message.type, "url": redact_url(endpoint.url),
            "status": attempt.status_code, "error": attempt.error, "duration_ms": attempt.duration_ms,
        }  # fmt: skip
        if recorded is None:
            log.warning("webhook lease lost before its outcome was recorded", extra=fields)
            return
        metrics.webhook_attempt(message.type, recorded.outcome, attempt.duration_ms / 1000)
        if recorded.outcome == "delivered":
            log.info("webhook delivered", extra=fields)
        else:
            log.warning("webhook attempt failed (%s)", recorded.outcome, extra=fields)
        if recorded.endpoint_disabled:
            self._alerts_due = True
            metrics.webhook_endpoint_disabled()
            log.error("webhook endpoint disabled: every attempt failed for too long; operator alerted", extra=fields)

    async def _load(self, claims: list[DeliveryClaim]) -> Rows:
        """The endpoints, messages and (for `job.completed`) jobs of a batch of claims, in one read."""
        async with self.database.session() as session:
            endpoint_ids = {c.endpoint_id for c in claims}
            message_ids = {c.message_id for c in claims}
            endpoints = await session.execute(sa.select(WebhookEndpoint).where(_id_in(WebhookEndpoint, endpoint_ids)))
            messages = await session.execute(sa.select(WebhookMessage).where(_id_in(WebhookMessage, message_ids)))
            rows = Rows(
                {e.id: e for e in endpoints.scalars() if e.id is not None}, {m.id: m for m in messages.scalars()}
            )
            job_ids = {
                str(m.data["job_id"]) for m in rows.messages.values() if m.type == JOB_COMPLETED and "job_id" in m.data
            }
            if job_ids:
                jobs = await session.execute(sa.select(Job).where(_id_in(Job, job_ids)))
                rows.jobs.update({j.id: j for j in jobs.scalars()})
        return rows

    async def _prepare(
        self, claim_: DeliveryClaim, rows: Rows
    ) -> tuple[WebhookEndpoint, WebhookMessage, str] | Skipped:
        """The endpoint, message and signed-to-be body; or why the delivery cannot be attempted."""
        endpoint = rows.endpoints.get(claim_.endpoint_id)
        message = rows.messages.get(claim_.message_id)
        if endpoint is None or message is None:
            return Skipped("the endpoint or the message no longer exists", message.type if message else "unknown")
        if not endpoint.active:
            return Skipped("the endpoint is disabled", message.type)
        data = dict(message.data)
        if message.type == JOB_COMPLETED and "job_id" in data:
            data["result_url"] = await self._result_url(rows.jobs.get(str(data["job_id"])))
        return endpoint, message, render_body(message, data)

    async def _result_url(self, job: Job | None) -> str | None:
        if job is None or not job.result_key or job.purged_at is not None or self.storage is None:
            return None
        try:
            return await self.storage.url(job.result_key, self.settings.signed_url_ttl_s)
        except Exception:
            log.warning("no signed result URL for a webhook message", extra={"job_id": job.id})
            return None

    async def _post(self, endpoint: WebhookEndpoint, message: WebhookMessage, body: str) -> Attempt:
        now = utcnow()
        sent_at = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": str(sent_at),
            "webhook-signature": webhook_signature(signing_secrets(endpoint, now), message.id, sent_at, body),
        }
        started = time.perf_counter()
        status: int | None = None
        try:
            result = await self.fetcher.post(
                endpoint.url, content=body.encode(), headers=headers, max_bytes=MAX_ANSWER_BYTES
            )
            status = result.status_code
            error = None if result.is_success else _status_error(status, result.body)
        except FetchError as exc:
            error = f"{exc.code}: {exc.message}"
        except Exception as exc:  # a bug or an unexpected library error: a failed attempt, never a crash
            log.exception("webhook attempt raised", extra={"message_id": message.id})
            error = f"internal error: {type(exc).__name__}"
        duration_ms = int((time.perf_counter() - started) * 1000)
        return Attempt(status, error[:500] if error else None, duration_ms)

    # --- operator alerts -----------------------------------------------------------------------------

    async def send_alerts(self) -> int:
        """Tell the operator about endpoints disabled since the last pass; returns how many were reported."""
        E = table_of(WebhookEndpoint)
        async with self.database.session() as session:
            rows = list(
                (await session.execute(sa.select(WebhookEndpoint).where(E.c.alert_pending.is_(True)).limit(20)))
                .scalars()
                .all()
            )
        urls = [u.get_secret_value() for u in self.settings.operator_alert_urls]
        reported = 0
        for endpoint in rows:
            if urls:
                title, body = alert_message(endpoint)
                result = await self.alert_sender.send(urls, title=title, body=body)
                if not result.ok and not result.permanent:
                    log.warning("webhook alert not sent; will retry", extra={"endpoint_id": endpoint.id})
                    continue
            async with self.database.session() as session:
                await execute_dml(session, sa.update(E).where(E.c.id == endpoint.id).values(alert_pending=False))
            reported += 1
        return reported

    @staticmethod
    def _fields(claim_: DeliveryClaim) -> dict[str, Any]:
        return {"delivery_id": claim_.id, "message_id": claim_.message_id, "endpoint_id": claim_.endpoint_id,
                "attempt": claim_.attempts}  # fmt: skip


def _status_error(status: int, body: bytes) -> str:
    """`HTTP 500: <the start of the answer>`, printable characters only."""
    text = body.decode("utf-8", "replace")
    snippet = "".join(c if c.isprintable() else " " for c in text).strip()[:ERROR_SNIPPET]
    return f"HTTP {status}" + (f": {snippet}" if snippet else "")


def alert_message(endpoint: WebhookEndpoint) -> tuple[str, str]:
    since = endpoint.failing_since.isoformat(timespec="seconds") if endpoint.failing_since else "?"
    title = f"Photobot webhook endpoint {endpoint.id} disabled"
    body = (
        f"Webhook endpoint {endpoint.id} ({redact_url(endpoint.url)}) was disabled: {endpoint.disabled_reason} "
        f"(failing since {since}). Its messages are kept: fix the receiver, then `photobot webhooks enable "
        f"{endpoint.id}` and `photobot webhooks replay MESSAGE_ID` for what it missed."
    )
    return title, body
