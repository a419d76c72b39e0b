"""The operator API: the style catalogue (`{PREFIX}/…`, admin-scope token)."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import photobot.admin.schemas as s
from photobot.admin.common import AUTH_ERRORS, PREFIX, P, admin, body, render, run
from photobot.services import styles
from photobot.web.openapi import operation


@operation(summary="List styles (active and inactive)", tags=["admin: styles"], auth="admin",
           responses={200: s.StyleOut, **AUTH_ERRORS}, list_of={200})  # fmt: skip
async def list_styles(request: Request) -> Response:
    runtime = await admin(request)
    async with runtime.db.session() as session:
        return render([s.StyleOut.of(x) for x in await styles.list_styles(session)])


class StylesIn(BaseModel):
    """A list of styles to create or replace (the same shape as a style file)."""

    styles: list[styles.StyleIn]


@operation(summary="Create or replace styles", tags=["admin: styles"], auth="admin", body=StylesIn,
           responses={200: s.StyleOut, 400: P, **AUTH_ERRORS, 422: P}, list_of={200})  # fmt: skip
async def upsert_styles(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, StylesIn)

    async def call() -> list[s.StyleOut]:
        async with runtime.db.session() as session:
            return [s.StyleOut.of(x) for x in await styles.upsert_styles(session, payload.styles)]

    return render(await run(call))


@operation(summary="Show a style", tags=["admin: styles"], auth="admin",
           responses={200: s.StyleOut, **AUTH_ERRORS, 404: P})  # fmt: skip
async def get_style(request: Request) -> Response:
    runtime = await admin(request)

    async def call() -> s.StyleOut:
        async with runtime.db.session() as session:
            return s.StyleOut.of(await styles.get_style(session, request.path_params["style_id"]))

    return render(await run(call))


routes = [
    Route(f"{PREFIX}/styles", list_styles, methods=["GET"]),
    Route(f"{PREFIX}/styles", upsert_styles, methods=["PUT"]),
    Route(f"{PREFIX}/styles/{{style_id}}", get_style, methods=["GET"]),
]
