"""The baseline: bare Starlette endpoints that read the body and answer what the service answers, without any
of its work (no token, no database, no storage). Served by uvicorn exactly like the service."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

OK_BODY = {"code": 200, "msg": "success"}


async def callback(request: Request) -> Response:
    await request.body()
    return JSONResponse(OK_BODY)


async def submission(request: Request) -> Response:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return JSONResponse({"id": "0" * 32, "status": "pending", "bytes": size}, status_code=202)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/webhooks/kie", callback, methods=["POST"]),
        Route("/v1/jobs", submission, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)
