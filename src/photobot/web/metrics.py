"""`GET /metrics`: the process counters (see `photobot.metrics`) plus gauges read from the database at scrape time.

Database gauges (jobs by state, the due-job backlog, each provider key's state, webhook deliveries by state and
endpoints by state) describe shared truth, so they are
computed with a query when scraped, never kept in memory: every instance reports the same numbers. The backlog
query is also what `/readyz` uses to decide whether this instance keeps up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from photobot.db import Database
from photobot.db.models import Job, JobState, ProviderKey, WebhookDelivery, WebhookEndpoint, due_clause, utcnow
from photobot.metrics import process_registry

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0


# --- database gauges (computed at scrape time) -------------------------------------------------------------
def _aware(value: datetime | str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=now.tzinfo)


async def backlog(session: AsyncSession, now: datetime | None = None) -> tuple[int, float]:
    """Due jobs nobody holds a live lease on: (how many, age in seconds of the oldest one, 0 when none)."""
    now = now or utcnow()
    row = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.min(col(Job.next_attempt_at)), sa.func.min(col(Job.deadline_at))).where(
                due_clause(now)
            )
        )
    ).one()
    count = int(row[0] or 0)
    if not count:
        return 0, 0.0
    # The job became due at next_attempt_at (or its deadline, whichever came first).
    oldest = [t for t in (_aware(row[1], now), _aware(row[2], now)) if t is not None and t <= now]
    age = max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0.0
    return count, age


def key_state(key: ProviderKey, now: datetime) -> str:
    if not key.active:
        return "disabled"
    cooldown = _aware(key.cooldown_until, now)
    if cooldown is not None and cooldown > now:
        return "exhausted" if (key.disabled_reason or "").startswith("exhausted") else "cooling_down"
    return "usable"


KEY_STATES = ("usable", "cooling_down", "exhausted", "disabled")
DELIVERY_STATES = ("pending", "sending", "delivered", "failed")


async def database_families(db: Database) -> list[Metric]:
    """The gauges that describe the database, read now."""
    now = utcnow()
    jobs = GaugeMetricFamily("photobot_jobs", "Jobs by state (database).", labels=["state"])
    due = GaugeMetricFamily("photobot_due_jobs", "Due jobs no worker holds a lease on (database).")
    age = GaugeMetricFamily(
        "photobot_due_backlog_oldest_seconds", "How long the oldest due, unclaimed job has been waiting (database)."
    )
    keys = GaugeMetricFamily(
        "photobot_provider_key_state", "Provider API keys: 1 for the state each key is in (database).",
        labels=["provider", "key_id", "state"],
    )  # fmt: skip
    failures = GaugeMetricFamily(
        "photobot_provider_key_failures", "Consecutive failures recorded on each provider API key (database).",
        labels=["provider", "key_id"],
    )  # fmt: skip
    deliveries = GaugeMetricFamily(
        "photobot_webhook_deliveries_by_state",
        "Outbound webhook deliveries (one message to one endpoint) by state (database).", labels=["state"],
    )  # fmt: skip
    endpoints = GaugeMetricFamily(
        "photobot_webhook_endpoints", "Outbound webhook endpoints, active or disabled (database).", labels=["state"]
    )
    up = GaugeMetricFamily("photobot_database_up", "1 when the scrape-time database queries succeeded.")
    try:
        async with db.session() as session:
            counts = dict(
                (await session.execute(sa.select(col(Job.state), sa.func.count()).group_by(col(Job.state)))).all()
            )
            due_count, due_age = await backlog(session, now)
            key_rows = list((await session.execute(sa.select(ProviderKey).order_by(col(ProviderKey.id)))).scalars())
            by_state = sa.select(col(WebhookDelivery.state), sa.func.count()).group_by(col(WebhookDelivery.state))
            delivery_counts = dict((await session.execute(by_state)).all())
            by_active = sa.select(col(WebhookEndpoint.active), sa.func.count()).group_by(col(WebhookEndpoint.active))
            endpoint_counts = {bool(k): v for k, v in (await session.execute(by_active)).all()}
    except Exception as exc:
        log.warning("metrics: database gauges unavailable", extra={"error": type(exc).__name__})
        up.add_metric([], 0)
        return [up]
    for state in JobState:
        jobs.add_metric([state.value], counts.get(state.value, 0))
    due.add_metric([], due_count)
    age.add_metric([], due_age)
    for key in key_rows:
        current = key_state(key, now)
        for key_state_name in KEY_STATES:
            keys.add_metric([key.provider, str(key.id), key_state_name], 1 if key_state_name == current else 0)
        failures.add_metric([key.provider, str(key.id)], key.failure_count)
    for delivery_state in DELIVERY_STATES:
        deliveries.add_metric([delivery_state], delivery_counts.get(delivery_state, 0))
    endpoints.add_metric(["active"], endpoint_counts.get(True, 0))
    endpoints.add_metric(["disabled"], endpoint_counts.get(False, 0))
    up.add_metric([], 1)
    return [jobs, due, age, keys, failures, deliveries, endpoints, up]


# --- exposition ----------------------------------------------------------------------------------------------
class _Static(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self.families


async def render(db: Database | None) -> bytes:
    registry = process_registry()
    if db is not None:
        registry.register(_Static(await database_families(db)))
    return generate_latest(registry)


async def metrics_endpoint(request: Request) -> Response:
    runtime = getattr(request.app.state, "runtime", None)
    body = await render(runtime.db if runtime is not None else None)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics_endpoint, methods=["GET"])]


# --- readiness ------------------------------------------------------------------------------------------------
async def backlog_check(db: Database, max_age_s: float) -> str:
    """Readiness of the queue (see web/health.py): "ok", or why the due-job backlog is too old."""

    async def read() -> tuple[int, float]:
        async with db.session() as session:
            return await backlog(session)

    try:
        count, age = await asyncio.wait_for(read(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return "timeout"
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"
    if count and age > max_age_s:
        return f"{count} due jobs, oldest waiting {age:.0f}s (limit {max_age_s:.0f}s)"
    return "ok"
