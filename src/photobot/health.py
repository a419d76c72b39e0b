"""Liveness and readiness.

`/healthz` answers as long as the process serves HTTP. `/readyz` checks every store the service needs
(database, Redis when configured, storage) with a short timeout each, and answers 503 naming what failed,
so a load balancer stops sending traffic to an instance that cannot do its work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.problems import Problem, problem_response
from photobot.runtime import Runtime

CHECK_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


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
    for name, probe in runtime.extras.get("readiness_checks", {}).items():
        report[name] = await probe()
    if runtime.draining:
        report["process"] = "draining"
    return report


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    report = await readiness(runtime)
    failing = [name for name, state in report.items() if state != "ok"]
    if failing:
        problem = Problem(
            503,
            "not_ready",
            "Service not ready",
            "Failing: " + ", ".join(f"{name} ({report[name]})" for name in failing),
            extra={"checks": report},
        )
        return problem_response(problem, instance=request.url.path)
    return JSONResponse({"status": "ready", "checks": report})


routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
