"""A `photobot worker` process killed with SIGKILL in the middle of finish: another worker completes the job.

Real processes, real PostgreSQL: the web app (no dispatcher) takes submissions and callbacks; two workers
run. The one that claims the finish step (the victim) confirms the result and starts downloading it from a
file host that stalls half-way through the body. While it is stuck past its lease, the other worker (alive,
polling) keeps its hands off because the victim renews its lease. Then the victim gets `kill -9`; its lease
runs out and the survivor finishes the job: one settle, one notification row, one e-mail.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from photobot.db import Database
from photobot.providers.simulator.runner import start_server
from tests.support.smtp import SMTPServer
from tests.support.stack import Stack, StackFactory, fast_sim

LEASE_S = 5  # the smallest lease the settings accept


@asynccontextmanager
async def stalling_host() -> AsyncIterator[dict[str, Any]]:
    """Serves the simulator's files; while `stall` is on, sends the headers and half the body, then hangs."""
    state: dict[str, Any] = {"upstream": None, "stall": True, "stalled": 0, "served": 0, "gone": asyncio.Event()}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        async with httpx.AsyncClient() as client:
            upstream = await client.get(f"{state['upstream']}{scope['path']}")
        data = upstream.content
        headers = [(b"content-type", upstream.headers.get("content-type", "image/png").encode()),
                   (b"content-length", str(len(data)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": upstream.status_code, "headers": headers})
        if state["stall"] and "/results/" in scope["path"]:
            state["stalled"] += 1
            await send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})
            await state["gone"].wait()
            return
        state["served"] += 1
        await send({"type": "http.response.body", "body": data})

    server = await start_server(app)
    state["url"], state["netloc"] = server.url, f"127.0.0.1:{server.port}"
    try:
        yield state
    finally:
        state["gone"].set()
        await server.stop()


def _start_worker(env: Stack, tmp_path: Path, name: str, result_host: str, smtp_url: str) -> subprocess.Popen:
    settings = env.settings
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOBOT_")}
    environ.update({
        "PHOTOBOT_ENV": "test",
        "PHOTOBOT_DATABASE_URL": env.db.url,
        "PHOTOBOT_LEASE_S": str(LEASE_S),
        "PHOTOBOT_POLL_INTERVAL_S": "0.2",
        "PHOTOBOT_KIE_BASE_URL": env.sim.url,
        "PHOTOBOT_KIE_UPLOAD_BASE_URL": env.sim.url,
        "PHOTOBOT_KIE_RESULT_HOSTS": result_host,
        "PHOTOBOT_PUBLIC_BASE_URL": env.base_url,
        "PHOTOBOT_ALLOW_PRIVATE_NETWORKS": "true",
        "PHOTOBOT_SECRET_KEY": settings.secret_keys()[0],
        "PHOTOBOT_STORAGE_URL": settings.resolved_storage_url,
        "PHOTOBOT_VAR_DIR": str(tmp_path / name),
        "PHOTOBOT_SMTP_URL": smtp_url,
        "PHOTOBOT_LOG_FORMAT": "json",
        "PHOTOBOT_LOG_LEVEL": "INFO",
    })  # fmt: skip
    photobot = Path(sys.executable).with_name("photobot")
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([str(photobot), "worker", "--grace", "1"], env=environ, cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def _log(tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


async def _wait_until(check: Any, workers: list[subprocess.Popen], tmp_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert all(w.poll() is None for w in workers), _logs(tmp_path)
        assert time.monotonic() < deadline, _logs(tmp_path)
        await asyncio.sleep(0.05)


def _logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(tmp_path.glob("worker*.log")))


async def test_worker_killed_mid_finish(
    pg_database: Database, stack: StackFactory, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    workers: list[subprocess.Popen] = []
    try:
        async with stalling_host() as host:
            sim = fast_sim(result_host=host["url"], result_pad_bytes=300_000)
            async with stack(
                pg_database, sim, run_dispatcher=False, kie_result_hosts=[host["netloc"]], smtp_url=smtp_server.url
            ) as env:
                host["upstream"] = env.sim.url
                # two workers, both up before the job exists; whichever claims the finish step gets stuck
                started = time.monotonic()
                workers += [_start_worker(env, tmp_path, f"worker{i}", host["netloc"], smtp_server.url) for i in (1, 2)]
                await _wait_until(lambda: all("dispatcher started" in _log(tmp_path, f"worker{i}") for i in (1, 2)),
                                  workers, tmp_path, 90)  # fmt: skip
                job_id = await env.submit(email="guest@example.com")
                await _wait_until(lambda: host["stalled"] >= 1, workers, tmp_path, 30)
                job = await env.job(job_id)
                assert job.state == "finishing" and job.lease_owner, _logs(tmp_path)
                victim = next(w for w in workers if f":{w.pid}:" in job.lease_owner)
                survivor = next(w for w in workers if w is not victim)
                first_lease = job.lease_until
                assert first_lease is not None

                # the survivor is alive and polling, yet keeps its hands off: the victim renews its lease
                while time.time() < first_lease.timestamp() + 1.5:
                    await asyncio.sleep(0.1)
                job = await env.job(job_id)
                assert job.state == "finishing" and f":{victim.pid}:" in (job.lease_owner or ""), _logs(tmp_path)
                assert job.lease_until is not None and job.lease_until > first_lease
                assert host["stalled"] == 1 and survivor.poll() is None, _logs(tmp_path)

                # kill -9 the victim mid-download; the host serves normally from now on
                victim.send_signal(signal.SIGKILL)
                assert victim.wait(10) == -signal.SIGKILL
                host["stall"] = False
                view = await env.wait_for(job_id, "completed", timeout=40)
                job = await env.job(job_id)
                assert job.lease_owner is None
                assert await env.ledger(job_id) == ["reserve", "settle"]
                assert [r.channel for r in await env.notifications(job_id)] == ["email"]
                async with httpx.AsyncClient() as plain:
                    assert (await plain.get(view["result_url"])).status_code == 200
                deadline = time.monotonic() + 15
                while not smtp_server.messages and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)
                assert len(smtp_server.messages) == 1, _logs(tmp_path)
                assert host["stalled"] == 1 and host["served"] >= 1
                survivor.send_signal(signal.SIGTERM)
                assert survivor.wait(20) == 0, _logs(tmp_path)
                assert time.monotonic() - started < 110
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
