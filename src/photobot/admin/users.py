"""The operator API: app users (b2c accounts) (`{PREFIX}/…`, admin-scope token)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import photobot.admin.schemas as s
from photobot.admin.common import AUTH_ERRORS, PREFIX, P, admin, body, int_param, render, run
from photobot.services import accounts
from photobot.web.openapi import operation


@operation(summary="List app users", tags=["admin: users"], auth="admin", responses={200: s.UserOut, **AUTH_ERRORS},
           list_of={200})  # fmt: skip
async def list_users(request: Request) -> Response:
    runtime = await admin(request)
    async with runtime.db.session() as session:
        return render([s.UserOut.of(u) for u in await accounts.list_users(session)])


@operation(summary="Create an app user (B2C credits)", tags=["admin: users"], auth="admin", body=s.UserCreate,
           responses={201: s.UserOut, 400: P, **AUTH_ERRORS, 422: P})  # fmt: skip
async def create_user(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.UserCreate)

    async def call() -> s.UserOut:
        async with runtime.db.session() as session:
            return s.UserOut.of(await accounts.create_user(session, payload.external_id, payload.credits))

    return render(await run(call), 201)


@operation(summary="Grant credits to an app user", tags=["admin: users"], auth="admin", body=s.CreditsIn,
           responses={200: s.UserOut, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def user_credits(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.CreditsIn)

    async def call() -> s.UserOut:
        async with runtime.db.session() as session:
            return s.UserOut.of(await accounts.add_user_credits(session, int_param(request, "user_id"), payload.add))

    return render(await run(call))


routes = [
    Route(f"{PREFIX}/users", list_users, methods=["GET"]),
    Route(f"{PREFIX}/users", create_user, methods=["POST"]),
    Route(f"{PREFIX}/users/{{user_id:int}}/credits", user_credits, methods=["POST"]),
]
