"""The operator API: a guest's data at one event — forget it or export it (`{PREFIX}/events/{id}/forget|export`,
admin-scope token). The guest is named in the body, never in the URL, so no access log holds their address."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import photobot.admin.schemas as s
from photobot.admin.common import AUTH_ERRORS, PREFIX, P, admin, body, int_param, render, run
from photobot.services import privacy
from photobot.web.openapi import operation


def _guest(payload: s.GuestIn) -> privacy.GuestRef:
    return privacy.GuestRef.of(email=payload.email, phone=payload.phone, guest_id=payload.guest_id)


@operation(
    summary="Forget a guest: delete their photos, blank their contact details, cancel unsent messages",
    tags=["admin: guests"], auth="admin", body=s.GuestIn,
    description="Matches the event's jobs by the one identifier given (e-mail in any case, phone, or guest id). "
    "Jobs still in flight are failed and refunded. The anonymised jobs and their ledger rows stay; their guest "
    "pages and photo links answer 410. Running it again finds nobody (all counts 0).",
    responses={200: s.ForgetOut, 400: P, **AUTH_ERRORS, 404: P, 422: P},
)  # fmt: skip
async def forget(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.GuestIn)

    async def call() -> s.ForgetOut:
        report = await privacy.forget_guest(
            runtime.db, runtime.storage, runtime.bus, runtime.settings, int_param(request, "event_id"),
            _guest(payload),
        )  # fmt: skip
        return s.ForgetOut.model_validate(report.as_dict())

    return render(await run(call))


@operation(
    summary="Export everything stored about a guest (jobs, history, credits, notifications, photo links)",
    tags=["admin: guests"], auth="admin", body=s.GuestIn,
    responses={200: None, 400: P, **AUTH_ERRORS, 404: P, 422: P},
)  # fmt: skip
async def export(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.GuestIn)

    async def call() -> dict[str, Any]:
        return await privacy.export_guest(
            runtime.db, runtime.storage, runtime.settings, int_param(request, "event_id"), _guest(payload)
        )

    return render(await run(call))


routes = [
    Route(f"{PREFIX}/events/{{event_id:int}}/forget", forget, methods=["POST"]),
    Route(f"{PREFIX}/events/{{event_id:int}}/export", export, methods=["POST"]),
]
