"""Liveness and readiness.

`/healthz` answers as long as the process serves HTTP. `/readyz` checks every store the service needs
(database, Redis when configured, storage) with a short timeout each, the age of the due-job backlog
(`PHOTOBOT_READY_MAX_BACKLOG_S`) and whether the process is draining, and answers 503 naming what failed,
so a load balancer stops sending traffic to an instance that cannot do its work.

Redis is the exception: without it intake, callbacks and pages keep working (rate limits fall back to memory,
wake-ups to polling), so a Redis outage makes the instance `degraded` (200, named in `checks`), not unready —
a 503 would make a load balancer pull every instance at once for the whole outage.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.problems import Problem, problem_response
from photobot.runtime import Runtime
from photobot.signing import PROBE_HEADER
from photobot.web.metrics import backlog_check

CHECK_TIMEOUT_S = 2.0
DEGRADABLE = frozenset({"redis"})  # parts whose failure costs speed, not service


async def healthz(request: Request) -> Response:
    """200 while the process serves HTTP. With `X-Photobot-Probe: <nonce>` the answer carries the nonce's HMAC
    under our secret (`signing.ReachProbe`): how a process checks at start-up that its public address, where
    providers call back, reaches a Photobot that accepts its callback tokens."""
    headers = {}
    nonce = request.headers.get(PROBE_HEADER)
    runtime = getattr(request.app.state, "runtime", None)
    if nonce and isinstance(runtime, Runtime):
        headers[PROBE_HEADER] = runtime.reach_probe.answer(nonce)
    return JSONResponse({"status": "ok"}, headers=headers)


async def _check(name: str, probe: Callable[[], Awaitable[object]]) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return name, "timeout"
    except Exception as exc:
        return name, type(exc).__name__
    return name, None


async def readiness(runtime: Runtime) -> dict[str, str]:
    """Run every check concurrently; map part name to "ok" or the failure kind."""
    checks: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("database", runtime.db.ping),
        ("storage", runtime.storage.check),
    ]
    if runtime.redis is not None:
        checks.append(("redis", runtime.redis.ping))
    results = await asyncio.gather(*(_check(name, probe) for name, probe in checks))
    report = {name: (error or "ok") for name, error in results}
    report["backlog"] = await backlog_check(runtime.db, runtime.settings.ready_max_backlog_s)
    if runtime.draining:
        report["process"] = "draining"
    return report


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    report = await readiness(runtime)
    failing = [name for name, state in report.items() if state != "ok" and name not in DEGRADABLE]
    if failing:
        problem = Problem(
            503,
            "not_ready",
            "Service not ready",
            "Failing: " + ", ".join(f"{name} ({report[name]})" for name in failing),
            extra={"checks": report},
        )
        return problem_response(problem, instance=request.url.path)
    degraded = any(state != "ok" for state in report.values())
    return JSONResponse({"status": "degraded" if degraded else "ready", "checks": report})


def drain_on_signal(
    runtime: Runtime, delay_s: float, signums: tuple[signal.Signals, ...] = (signal.SIGTERM,)
) -> Callable[[], None]:
    """On SIGTERM: mark the process draining (`/readyz` answers 503) and hand the signal to the server only
    `delay_s` later, so load balancers stop routing here before it stops accepting. A second signal stops at once.
    Returns a function that puts the previous handlers back. Does nothing when `delay_s` is 0 or off the main thread.
    """
    if delay_s <= 0 or threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {signum: signal.getsignal(signum) for signum in signums}

    def handler(signum: int, frame: object) -> None:
        if runtime.draining:
            _forward(previous.get(signum), signum, frame)
            return
        runtime.draining = True
        loop.call_soon_threadsafe(loop.call_later, delay_s, _forward, previous.get(signum), signum, None)

    for signum in signums:
        signal.signal(signum, handler)

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore


def _forward(handler: object, signum: int, frame: object) -> None:
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
