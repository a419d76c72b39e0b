"""Prometheus metrics: `GET /metrics`, every name prefixed `photobot_`.

Two kinds of metrics live here:

- **Process counters and histograms** (HTTP requests, job transitions, time in state, provider calls,
  callbacks, notifications, credit operations, outbound webhook attempts) are kept by the process that did the
  work. When several processes run on one host (`photobot serve --workers N`, web + worker side by side), set
  `PROMETHEUS_MULTIPROC_DIR` to an empty directory shared by them *before they start*: prometheus-client then
  keeps the values in files there and `/metrics` sums them with a `MultiProcessCollector`.
- **Database gauges** (jobs by state, the due-job backlog, each provider key's state) describe shared truth,
  so they are computed at scrape time with a query, never kept in memory: every instance reports the same
  numbers, whichever process scraped.

Labels never carry secrets: provider keys are labelled by their id, HTTP requests by the route template
(`/v1/jobs/{job_id}`), never the raw path.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import REGISTRY, Collector

log = logging.getLogger(__name__)
T = TypeVar("T")

STATE_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800)
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)

# --- process metrics ---------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "photobot_http_requests", "HTTP requests answered, by route template and status.", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "photobot_http_request_seconds", "Time to answer HTTP requests, by route template.", ["method", "route"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
JOB_TRANSITIONS = Counter(
    "photobot_job_transitions", "Job state changes won (conditional updates), by from and to state.",
    ["from_state", "to_state"],
)  # fmt: skip
JOB_STATE_SECONDS = Histogram(
    "photobot_job_state_seconds", "Time a job spent in a state before leaving it.", ["state"], buckets=STATE_BUCKETS
)
PROVIDER_CALLS = Counter(
    "photobot_provider_calls", "Calls to image providers, by operation and result code (ok or the error code).",
    ["provider", "operation", "code"],
)  # fmt: skip
PROVIDER_SECONDS = Histogram(
    "photobot_provider_call_seconds", "Latency of calls to image providers.", ["provider", "operation"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
CALLBACKS = Counter(
    "photobot_callbacks",
    "Provider callbacks received, by outcome: accepted, duplicate, late, unknown, ignored (200); forged, expired "
    "(401/403); too_large, malformed, rate_limited (refused).",
    ["provider", "outcome"],
)
STEP_CRASHES = Counter(
    "photobot_step_crashes",
    "Unexpected errors raised by a job's step (each backs off; the job fails with internal_error after a few).",
    ["state"],
)
NOTIFICATIONS = Counter(
    "photobot_notifications", "Notification send attempts, by channel family and outcome.", ["channel", "outcome"]
)
CREDIT_OPERATIONS = Counter(
    "photobot_credit_operations", "Credit ledger operations (grant, reserve, settle, release, reserve_refused).",
    ["operation", "account"],
)  # fmt: skip
CREDITS_MOVED = Counter(
    "photobot_credits", "Credits moved by ledger operations (absolute amounts).", ["operation", "account"]
)

PAYMENTS_APPLIED = Counter(
    "photobot_payments_applied",
    "Mercado Pago payments applied to purchases, by outcome (granted, duplicate, mismatch, reversed, …).",
    ["outcome"],
)

WEBHOOK_DELIVERIES = Counter(
    "photobot_webhook_deliveries",
    "Outbound webhook attempts, by message type and outcome: delivered (2xx), retry (failed, another attempt is "
    "scheduled), failed (the schedule is used up), skipped (the endpoint was disabled before the attempt).",
    ["type", "outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "photobot_webhook_attempt_seconds", "Time an outbound webhook attempt took, until the answer or the failure.",
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "photobot_webhook_endpoints_disabled", "Webhook endpoints disabled because every attempt failed for too long."
)

CALLBACK_OUTCOME_BY_STATUS = {401: "forged", 403: "forged", 413: "too_large", 400: "malformed", 422: "malformed",
                              429: "rate_limited"}  # fmt: skip


# --- recording helpers (one-line calls from the code that does the work) -----------------------------------
_CHILDREN: dict[tuple[str, ...], Any] = {}


def _child(metric: Counter | Histogram, *labels: str) -> Any:
    """`metric.labels(*labels)`, remembered: prometheus-client keeps the same child per label set, but finding it
    takes a lock and a tuple of `str()`s on every request (hot paths: HTTP requests, callbacks, transitions).
    Label sets are bounded (route templates, statuses, states), so is this cache."""
    key = (metric._name, *labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    _child(HTTP_REQUESTS, method, route, str(status)).inc()
    _child(HTTP_SECONDS, method, route).observe(seconds)


def callback(provider: str, outcome: str) -> None:
    _child(CALLBACKS, provider, outcome).inc()


def notification_result(channel: str, outcome: str) -> None:
    """The Notifier's `on_result` callback."""
    NOTIFICATIONS.labels(channel, outcome).inc()


def payment_applied(outcome: str) -> None:
    PAYMENTS_APPLIED.labels(outcome).inc()


def webhook_attempt(type_: str, outcome: str, seconds: float | None = None) -> None:
    WEBHOOK_DELIVERIES.labels(type_, outcome).inc()
    if seconds is not None:
        WEBHOOK_SECONDS.observe(seconds)


def webhook_endpoint_disabled() -> None:
    WEBHOOK_ENDPOINTS_DISABLED.inc()


def credit_operation(operation: str, account: str, amount: int = 0) -> None:
    CREDIT_OPERATIONS.labels(operation, account).inc()
    if amount:
        CREDITS_MOVED.labels(operation, account).inc(abs(amount))


def job_transition(from_state: str, to_state: str, entered: datetime | None, at: datetime) -> None:
    """Count a won transition and observe how long the job was in `from_state`.

    `entered` is the job's `state_changed_at` before this transition (read by `states.transition` in the query
    it makes anyway). Never raises: metrics must not break a transition.
    """
    try:
        if from_state == to_state:
            return
        _child(JOB_TRANSITIONS, from_state, to_state).inc()
        if entered is not None:
            _child(JOB_STATE_SECONDS, from_state).observe(max(0.0, (at - entered).total_seconds()))
    except Exception:  # pragma: no cover - defensive
        log.debug("job transition metric failed", exc_info=True)


async def timed_provider_call(provider: str, operation: str, call: Awaitable[T]) -> T:
    """Await a provider call, counting it by result code and observing its latency."""
    started = time.perf_counter()
    code = "ok"
    try:
        return await call
    except Exception as exc:
        code = str(getattr(exc, "code", None) or type(exc).__name__)
        raise
    finally:
        PROVIDER_CALLS.labels(provider, operation, code).inc()
        PROVIDER_SECONDS.labels(provider, operation).observe(time.perf_counter() - started)


# --- exposition ----------------------------------------------------------------------------------------------
class _Forward(Collector):
    """The process registry (single-process mode), forwarded into a per-scrape registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_registry() -> CollectorRegistry:
    """What this host's processes counted: all of them via the shared directory, or just this one."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
    else:
        registry.register(_Forward())
    return registry


# --- a worker's own exporter ---------------------------------------------------------------------------------
def start_exporter(port: int, addr: str = "0.0.0.0") -> Any:
    """Serve this process's counters on `port` (for `photobot worker`, which has no web app); 0 does nothing.

    Returns a function that stops the server. Database gauges are left to the web processes' `/metrics`.
    """
    if not port:
        return lambda: None
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr, registry=process_registry())
    log.info("worker metrics on port %d", port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
