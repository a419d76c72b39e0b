"""The operator API: the provider api key pool (`{PREFIX}/…`, admin-scope token)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import photobot.admin.schemas as s
from photobot.admin.common import AUTH_ERRORS, PREFIX, P, admin, body, int_param, render, run
from photobot.services import access
from photobot.web.openapi import operation


@operation(summary="List provider API keys (masked)", tags=["admin: keys"], auth="admin",
           responses={200: s.KeyOut, **AUTH_ERRORS}, list_of={200})  # fmt: skip
async def list_keys(request: Request) -> Response:
    runtime = await admin(request)
    async with runtime.db.session() as session:
        return render([s.KeyOut.of(k) for k in await access.list_keys(session, request.query_params.get("provider"))])


@operation(summary="Add a provider API key to the pool", tags=["admin: keys"], auth="admin", body=s.KeyCreate,
           responses={201: s.KeyOut, 400: P, **AUTH_ERRORS, 422: P})  # fmt: skip
async def add_key(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.KeyCreate)

    async def call() -> s.KeyOut:
        async with runtime.db.session() as session:
            return s.KeyOut.of(await access.add_key(session, payload.provider, payload.secret, payload.label))

    return render(await run(call), 201)


@operation(summary="Disable a provider API key", tags=["admin: keys"], auth="admin", body=s.KeyDisable,
           responses={200: s.KeyOut, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def disable_key(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.KeyDisable, optional=True)

    async def call() -> s.KeyOut:
        async with runtime.db.session() as session:
            return s.KeyOut.of(await access.disable_key(session, int_param(request, "key_id"), payload.reason))

    return render(await run(call))


@operation(summary="Enable a provider API key again (clears cool-down and failures)", tags=["admin: keys"],
           auth="admin", responses={200: s.KeyOut, **AUTH_ERRORS, 404: P})  # fmt: skip
async def enable_key(request: Request) -> Response:
    runtime = await admin(request)

    async def call() -> s.KeyOut:
        async with runtime.db.session() as session:
            return s.KeyOut.of(await access.enable_key(session, int_param(request, "key_id")))

    return render(await run(call))


routes = [
    Route(f"{PREFIX}/keys", list_keys, methods=["GET"]),
    Route(f"{PREFIX}/keys", add_key, methods=["POST"]),
    Route(f"{PREFIX}/keys/{{key_id:int}}/disable", disable_key, methods=["POST"]),
    Route(f"{PREFIX}/keys/{{key_id:int}}/enable", enable_key, methods=["POST"]),
]
