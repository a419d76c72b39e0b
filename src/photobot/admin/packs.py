"""The operator API: credit packs on sale and the purchases made (`{PREFIX}/packs`, `{PREFIX}/purchases`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import photobot.admin.schemas as s
from photobot.admin.common import AUTH_ERRORS, PREFIX, P, admin, body, int_param, query, render, run
from photobot.payments import packs, purchases
from photobot.web.openapi import operation


@operation(summary="List credit packs", tags=["admin: payments"], auth="admin",
           responses={200: s.PackOut, **AUTH_ERRORS}, list_of={200})  # fmt: skip
async def list_packs(request: Request) -> Response:
    runtime = await admin(request)
    async with runtime.db.session() as session:
        return render([packs.pack_view(p) for p in await packs.list_packs(session)])


@operation(summary="Create a credit pack", tags=["admin: payments"], auth="admin", body=s.PackCreate,
           responses={201: s.PackOut, 400: P, **AUTH_ERRORS, 422: P})  # fmt: skip
async def create_pack(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.PackCreate)

    async def call() -> dict[str, object]:
        async with runtime.db.session() as session:
            pack = await packs.create_pack(session, payload.name, payload.credits, payload.price, payload.currency)
            return packs.pack_view(pack)

    return render(await run(call), 201)


@operation(summary="Take a credit pack off sale", tags=["admin: payments"], auth="admin",
           responses={200: s.PackOut, **AUTH_ERRORS, 404: P})  # fmt: skip
async def disable_pack(request: Request) -> Response:
    runtime = await admin(request)

    async def call() -> dict[str, object]:
        async with runtime.db.session() as session:
            return packs.pack_view(await packs.disable_pack(session, int_param(request, "pack_id")))

    return render(await run(call))


@operation(summary="List purchases (newest first)", tags=["admin: payments"], auth="admin", query=s.PurchasesQuery,
           responses={200: s.AdminPurchaseOut, **AUTH_ERRORS, 422: P}, list_of={200})  # fmt: skip
async def list_purchases(request: Request) -> Response:
    runtime = await admin(request)
    q = query(request, s.PurchasesQuery)
    async with runtime.db.session() as session:
        rows = await purchases.list_purchases(session, event_id=q.event_id, user_id=q.user_id)
        return render([packs.purchase_view(p) for p in rows])


routes = [
    Route(f"{PREFIX}/packs", list_packs, methods=["GET"]),
    Route(f"{PREFIX}/packs", create_pack, methods=["POST"]),
    Route(f"{PREFIX}/packs/{{pack_id:int}}/disable", disable_pack, methods=["POST"]),
    Route(f"{PREFIX}/purchases", list_purchases, methods=["GET"]),
]
