"""GET /metrics over real HTTP, parsed with prometheus_client.parser: the numbers move as the jobs do.

One run covers a happy path (with the provider sending every callback twice), forged and expired callbacks,
and a failed generation. Process counters are compared before/after (they are process-wide); database gauges
are absolute (each test has its own database).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from photobot.db import Database
from photobot.signing import CALLBACK_EXPIRY_MARGIN_S
from tests.support.metrics import Samples, parse_metrics
from tests.support.smtp import SMTPServer
from tests.support.stack import StackFactory, fast_sim

KIE_BODY = b'{"code": 200, "msg": "ok", "data": {"taskId": "t-forged", "state": "success"}}'


def late_body(task_id: str | None) -> bytes:
    now_ms = int(time.time() * 1000)
    data = {
        "taskId": task_id, "model": "nano-banana-pro", "state": "success", "param": "{}",
        "resultJson": json.dumps({"resultUrls": ["https://tempfile.aiquickdraw.com/x.png"]}), "failCode": "",
        "failMsg": None, "costTime": 1, "createTime": now_ms, "updateTime": now_ms, "completeTime": now_ms,
    }  # fmt: skip
    return json.dumps({"code": 200, "msg": "done", "data": data}).encode()


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return after.get_value(name, **labels) - before.get_value(name, **labels)


async def _wait_metric(env, name: str, minimum: float, before: Samples, timeout: float = 10.0, **labels: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        now = await env.scrape()
        if delta(now, before, name, **labels) >= minimum:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} moved {delta(now, before, name, **labels)}, wanted {minimum}")
        await asyncio.sleep(0.05)


async def test_metrics_follow_a_full_run(database: Database, ops_app: StackFactory, smtp_server: SMTPServer) -> None:
    async with ops_app(database, fast_sim(duplicate_callbacks=2), smtp_url=smtp_server.url) as env:
        before = await env.scrape()

        # happy path, each callback sent twice by the provider
        done = await env.submit(email="guest@example.com")
        await env.wait_for(done, "completed")
        await _wait_metric(env, "photobot_callbacks_total", 1, before, provider="kie", outcome="duplicate")
        await _wait_metric(env, "photobot_notifications_total", 1, before, channel="email", outcome="sent")

        # forged and expired callback tokens
        forged = await env.client.post("/webhooks/kie", params={"token": "not-a-token"}, content=KIE_BODY)
        assert forged.status_code == 401
        expired_token = env.token(done, deadline_ts=time.time() - CALLBACK_EXPIRY_MARGIN_S - 10)
        expired = await env.client.post("/webhooks/kie", params={"token": expired_token}, content=KIE_BODY)
        assert expired.status_code == 401

        # a failed generation, then a late success callback for it (recorded, changes nothing)
        env.sim.config.failure_rate = 1.0
        failed = await env.submit()
        await env.wait_for(failed, "failed")
        task_id = (await env.job(failed)).provider_task_id
        late = await env.client.post("/webhooks/kie", params={"token": env.token(failed)}, content=late_body(task_id))
        assert late.status_code == 200

        after = await env.scrape()

    d = lambda name, **labels: delta(after, before, name, **labels)  # noqa: E731
    # HTTP by route template, never the raw path
    assert d("photobot_http_requests_total", method="POST", route="/v1/jobs", status="202") == 2
    assert d("photobot_http_requests_total", method="GET", route="/v1/jobs/{job_id}", status="200") >= 2
    assert d("photobot_http_requests_total", method="POST", route="/webhooks/kie", status="401") == 2
    assert d("photobot_http_request_seconds_count", method="POST", route="/v1/jobs") == 2
    routes = {dict(labels).get("route") for (_, labels) in after}
    assert not any(done in (r or "") or failed in (r or "") for r in routes)
    # jobs by transition and time in state
    assert d("photobot_job_transitions_total", from_state="pending", to_state="submitting") == 2
    assert d("photobot_job_transitions_total", from_state="submitting", to_state="waiting") == 2
    assert d("photobot_job_transitions_total", from_state="waiting", to_state="finishing") == 1
    assert d("photobot_job_transitions_total", from_state="finishing", to_state="completed") == 1
    assert d("photobot_job_transitions_total", to_state="failed") == 1
    assert d("photobot_job_state_seconds_count", state="pending") == 2
    assert d("photobot_job_state_seconds_count", state="waiting") == 2
    assert d("photobot_job_state_seconds_sum", state="waiting") > 0
    # provider calls by code, with latency
    assert d("photobot_provider_calls_total", provider="kie", operation="submit", code="ok") == 2
    assert d("photobot_provider_calls_total", provider="kie", operation="status", code="ok") >= 1
    assert d("photobot_provider_call_seconds_count", provider="kie", operation="submit") == 2
    # callbacks by outcome
    assert d("photobot_callbacks_total", provider="kie", outcome="accepted") == 2  # success + fail
    assert d("photobot_callbacks_total", provider="kie", outcome="duplicate") >= 1
    assert d("photobot_callbacks_total", provider="kie", outcome="forged") == 1
    assert d("photobot_callbacks_total", provider="kie", outcome="expired") == 1
    assert d("photobot_callbacks_total", provider="kie", outcome="late") == 1
    # credits
    assert d("photobot_credit_operations_total", operation="reserve", account="event") == 2
    assert d("photobot_credit_operations_total", operation="settle", account="event") == 1
    assert d("photobot_credit_operations_total", operation="release", account="event") == 1
    assert d("photobot_credits_total", operation="reserve", account="event") == 2
    # notifications
    assert d("photobot_notifications_total", channel="email", outcome="sent") == 1
    # database gauges: absolute
    assert after.get_value("photobot_jobs", state="completed") == 1
    assert after.get_value("photobot_jobs", state="failed") == 1
    assert after.get_value("photobot_jobs", state="pending") == 0
    assert after.get_value("photobot_due_jobs") == 0
    assert after.get_value("photobot_due_backlog_oldest_seconds") == 0
    assert after.get_value("photobot_database_up") == 1
    key_rows = [dict(labels) for (name, labels) in after if name == "photobot_provider_key_state"]
    assert key_rows and all(set(row) == {"provider", "key_id", "state"} for row in key_rows)
    assert after.get_value("photobot_provider_key_state", provider="kie", state="usable") >= 1


async def test_metrics_never_show_key_secrets(database: Database, ops_app: StackFactory) -> None:
    secret = "kie-secret-key-0123456789abcdef"
    async with ops_app(database, kie_api_keys=secret) as env:
        text = (await env.client.get("/metrics")).text
        samples = parse_metrics(text)
    assert secret not in text and secret[-4:] not in text
    assert samples.get_value("photobot_provider_key_state", provider="kie", state="usable") >= 1


async def test_backlog_gauge_counts_due_unclaimed_jobs(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, run_dispatcher=False) as env:
        job_id = await env.submit()
        from datetime import timedelta

        from photobot.db.models import utcnow

        await env.set_job(job_id, next_attempt_at=utcnow() - timedelta(seconds=30))
        samples = await env.scrape()
        assert samples.get_value("photobot_due_jobs") == 1
        assert 29 <= samples.get_value("photobot_due_backlog_oldest_seconds") < 60
        assert samples.get_value("photobot_jobs", state="pending") == 1
        # a job leased by a live worker is not backlog
        await env.set_job(job_id, lease_owner="w1", lease_until=utcnow() + timedelta(seconds=60))
        samples = await env.scrape()
        assert samples.get_value("photobot_due_jobs") == 0


MULTIPROC_CHILD = """
import sys
from photobot import metrics
metrics.callback("kie", "accepted")
metrics.http_request("GET", "/healthz", 200, 0.01)
"""

MULTIPROC_RENDER = """
import asyncio
from photobot.web import metrics
print(asyncio.run(metrics.render(None)).decode())
"""


def test_metrics_are_summed_across_processes(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, counters from several processes add up in one scrape."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", MULTIPROC_CHILD], env=env, check=True, timeout=60)
    out = subprocess.run(
        [sys.executable, "-c", MULTIPROC_RENDER], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    samples = parse_metrics(out)
    assert samples.get_value("photobot_callbacks_total", provider="kie", outcome="accepted") == 2
    assert samples.get_value("photobot_http_requests_total", route="/healthz", status="200") == 2


async def test_worker_exporter_serves_process_counters() -> None:
    from photobot import metrics
    from tests.support.servers import free_port

    assert metrics.start_exporter(0)() is None  # off: nothing started
    port = free_port()
    stop = metrics.start_exporter(port, "127.0.0.1")
    try:
        metrics.callback("fal", "accepted")
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        stop()
    samples = parse_metrics(response.text)
    assert samples.get_value("photobot_callbacks_total", provider="fal", outcome="accepted") >= 1
    assert samples.get_value("photobot_jobs") == 0  # database gauges are the web processes' job
