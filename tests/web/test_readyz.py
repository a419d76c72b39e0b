"""/readyz: 503 while draining and when the due-job backlog is older than PHOTOBOT_READY_MAX_BACKLOG_S."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from types import SimpleNamespace

from photobot.db import Database
from photobot.db.models import utcnow
from photobot.web.health import drain_on_signal
from tests.support.stack import StackFactory


async def test_ready_then_draining(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, run_dispatcher=False) as env:
        ready = await env.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["backlog"] == "ok"
        env.app.state.runtime.draining = True
        draining = await env.client.get("/readyz")
        assert draining.status_code == 503
        body = draining.json()
        assert body["code"] == "not_ready" and body["checks"]["process"] == "draining"
        assert (await env.client.get("/healthz")).status_code == 200  # still alive
        env.app.state.runtime.draining = False


async def test_stale_backlog_is_not_ready(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, run_dispatcher=False, ready_max_backlog_s=60) as env:
        job_id = await env.submit()
        assert (await env.client.get("/readyz")).status_code == 200  # due now, but fresh
        await env.set_job(job_id, next_attempt_at=utcnow() - timedelta(seconds=90))
        stale = await env.client.get("/readyz")
        assert stale.status_code == 503, stale.text
        assert stale.json()["checks"]["backlog"].startswith("1 due jobs, oldest waiting 9")
        assert "backlog" in stale.json()["detail"]
        # a worker holding a live lease is working on it: not backlog
        await env.set_job(job_id, lease_owner="w1", lease_until=utcnow() + timedelta(seconds=30))
        assert (await env.client.get("/readyz")).status_code == 200
        # its lease expired: the job is due and unclaimed again
        await env.set_job(job_id, lease_until=utcnow() - timedelta(seconds=1))
        assert (await env.client.get("/readyz")).status_code == 503
        # a job past its deadline is due from its deadline on
        await env.set_job(job_id, next_attempt_at=utcnow() + timedelta(hours=1), deadline_at=utcnow())
        assert (await env.client.get("/readyz")).status_code == 200
        await env.client.post(f"/v1/admin/jobs/{job_id}/fail", headers=env.admin)


async def test_sigterm_drains_before_handing_over() -> None:
    """The drain hook marks the process draining at once and passes the signal on `delay_s` later."""
    runtime = SimpleNamespace(draining=False)
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    try:
        restore = drain_on_signal(runtime, 0.3, (signal.SIGUSR1,))  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.sleep(0.05)
        assert runtime.draining is True and received == []
        await asyncio.sleep(0.5)
        assert received == [signal.SIGUSR1]
        restore()
    finally:
        signal.signal(signal.SIGUSR1, previous)


async def test_no_drain_hook_when_disabled() -> None:
    runtime = SimpleNamespace(draining=False)
    before = signal.getsignal(signal.SIGUSR2)
    drain_on_signal(runtime, 0, (signal.SIGUSR2,))  # type: ignore[arg-type]
    assert signal.getsignal(signal.SIGUSR2) == before
