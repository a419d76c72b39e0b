"""The simulator's Starlette app: kie.ai routes, a small fal.ai queue, a file host and the admin endpoints.

Admin (unauthenticated: the simulator is a test double, bind it to loopback):
- `GET /_sim/config` → the knobs; `POST /_sim/config` with a partial JSON object changes them at runtime;
- `GET /_sim/stats` → counters (createTask calls per key, 429s sent, callbacks sent/dropped/failed, …);
- `POST /_sim/reset` → knobs back to their start values, counters and tasks cleared;
- `GET /_sim/tasks/{task_id}` → the stored task (as recordInfo would show it, without auth).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import photobot.providers.simulator.fal_api as fal_api
import photobot.providers.simulator.kie_api as kie_api
from photobot.net.tls import client_context
from photobot.providers.simulator.config import SimConfig
from photobot.providers.simulator.state import SimState


async def get_config(request: Request) -> Response:
    return JSONResponse(kie_api.state_of(request).config.to_dict())


async def set_config(request: Request) -> Response:
    sim = kie_api.state_of(request)
    try:
        changes = await request.json()
        if not isinstance(changes, dict):
            raise ValueError("send a JSON object of knobs")
        sim.config.update(changes)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(sim.config.to_dict())


async def get_stats(request: Request) -> Response:
    return JSONResponse(kie_api.state_of(request).stats.to_dict())


async def reset(request: Request) -> Response:
    kie_api.state_of(request).reset()
    return JSONResponse({"ok": True})


async def get_task(request: Request) -> Response:
    task = kie_api.state_of(request).tasks.get(request.path_params["task_id"])
    if task is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse({k: v for k, v in task.items() if k != "key"})


def create_app(config: SimConfig | None = None, *, state: SimState | None = None) -> Starlette:
    """A fresh simulator app; `app.state.sim` is its `SimState` (config, stats, tasks)."""
    sim = state or SimState(config or SimConfig())

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(follow_redirects=True, verify=client_context()) as client:
            sim.http = client
            try:
                yield
            finally:
                for task in list(sim.background):
                    task.cancel()
                sim.http = None

    routes = [
        Route("/api/v1/jobs/createTask", kie_api.create_task, methods=["POST"]),
        Route("/api/v1/jobs/recordInfo", kie_api.record_info, methods=["GET"]),
        Route("/api/v1/chat/credit", kie_api.credit, methods=["GET"]),
        Route("/api/file-stream-upload", kie_api.upload_stream, methods=["POST"]),
        Route("/api/file-base64-upload", kie_api.upload_base64, methods=["POST"]),
        Route("/api/file-url-upload", kie_api.upload_url, methods=["POST"]),
        Route("/files/{name:path}", kie_api.serve_file, methods=["GET"]),
        Route("/fal/queue/{path:path}", fal_api.queue, methods=["GET", "POST", "PUT"]),
        Route("/fal/.well-known/jwks.json", fal_api.jwks, methods=["GET"]),
        Route("/fal/storage/upload/initiate", fal_api.upload_initiate, methods=["POST"]),
        Route("/fal/storage/put/{file_id:path}", fal_api.upload_put, methods=["PUT"]),
        Route("/_sim/config", get_config, methods=["GET"]),
        Route("/_sim/config", set_config, methods=["POST"]),
        Route("/_sim/stats", get_stats, methods=["GET"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/tasks/{task_id}", get_task, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sim = sim
    return app
