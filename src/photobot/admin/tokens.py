"""The operator API: client tokens (kiosks, apps, admins) (`{PREFIX}/…`, admin-scope token)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import photobot.admin.schemas as s
from photobot.admin.common import AUTH_ERRORS, PREFIX, P, admin, body, int_param, render, run
from photobot.services import access
from photobot.web.openapi import operation


@operation(summary="List client tokens (never the tokens themselves)", tags=["admin: tokens"], auth="admin",
           responses={200: s.TokenOut, **AUTH_ERRORS}, list_of={200})  # fmt: skip
async def list_tokens(request: Request) -> Response:
    runtime = await admin(request)
    async with runtime.db.session() as session:
        return render([s.TokenOut.of(t) for t in await access.list_tokens(session)])


@operation(summary="Create a client token (shown once)", tags=["admin: tokens"], auth="admin", body=s.TokenCreate,
           responses={201: s.TokenCreated, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def create_token(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.TokenCreate)

    async def call() -> s.TokenCreated:
        async with runtime.db.session() as session:
            record, token = await access.create_token(
                session, payload.scope, event_id=payload.event_id, label=payload.label
            )
            return s.TokenCreated.model_validate({**s.TokenOut.of(record).model_dump(), "token": token})

    return render(await run(call), 201)


@operation(summary="Revoke a client token", tags=["admin: tokens"], auth="admin",
           responses={200: s.TokenOut, **AUTH_ERRORS, 404: P})  # fmt: skip
async def revoke_token(request: Request) -> Response:
    runtime = await admin(request)

    async def call() -> s.TokenOut:
        async with runtime.db.session() as session:
            return s.TokenOut.of(await access.revoke_token(session, int_param(request, "token_id"), bus=runtime.bus))

    return render(await run(call))


routes = [
    Route(f"{PREFIX}/tokens", list_tokens, methods=["GET"]),
    Route(f"{PREFIX}/tokens", create_token, methods=["POST"]),
    Route(f"{PREFIX}/tokens/{{token_id:int}}", revoke_token, methods=["DELETE"]),
]
