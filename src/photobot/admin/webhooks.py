"""The operator API for outbound webhooks (`{PREFIX}/webhooks`): the same service as `photobot webhooks …`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import photobot.admin.schemas as s
from photobot.admin.common import AUTH_ERRORS, PREFIX, P, admin, body, int_param, query, render, run
from photobot.problems import Problem
from photobot.services import webhooks as svc
from photobot.web.openapi import operation

TAGS = ["admin: webhooks"]


@operation(summary="List webhook endpoints", tags=TAGS, auth="admin", responses={200: s.WebhookOut, **AUTH_ERRORS},
           list_of={200})  # fmt: skip
async def list_endpoints(request: Request) -> Response:
    runtime = await admin(request)
    async with runtime.db.session() as session:
        return render(await svc.list_endpoints(session))


@operation(summary="Add a webhook endpoint (its secret is shown once)", tags=TAGS, auth="admin", body=s.WebhookCreate,
           responses={201: s.WebhookWithSecret, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def add_endpoint(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.WebhookCreate)

    async def call() -> dict[str, Any]:
        async with runtime.db.session() as session:
            try:
                return await svc.add_endpoint(
                    session, runtime.settings, payload.url, event_id=payload.event_id,
                    types=list(payload.types) if payload.types is not None else None, description=payload.description,
                )  # fmt: skip
            except svc.EndpointRefused as exc:
                raise Problem(422, exc.code, "URL not allowed", str(exc)) from None

    return render(await run(call), 201)


def _endpoint_action(
    action: Callable[..., Awaitable[dict[str, Any]]],
) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        runtime = await admin(request)

        async def call() -> dict[str, Any]:
            async with runtime.db.session() as session:
                return await action(session, int_param(request, "endpoint_id"))

        return render(await run(call))

    return handler


disable_endpoint = operation(
    summary="Disable a webhook endpoint", tags=TAGS, auth="admin", responses={200: s.WebhookOut, **AUTH_ERRORS, 404: P}
)(_endpoint_action(svc.disable_endpoint))
enable_endpoint = operation(
    summary="Enable a webhook endpoint again (missed messages need a replay)", tags=TAGS, auth="admin",
    responses={200: s.WebhookOut, **AUTH_ERRORS, 404: P},
)(_endpoint_action(svc.enable_endpoint))  # fmt: skip


@operation(summary="Rotate an endpoint's secret (the new one is shown once; the old one signs during the overlap)",
           tags=TAGS, auth="admin", body=s.WebhookRotate,
           responses={200: s.WebhookWithSecret, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def rotate_secret(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.WebhookRotate, optional=True)

    async def call() -> dict[str, Any]:
        async with runtime.db.session() as session:
            endpoint_id = int_param(request, "endpoint_id")
            return await svc.rotate_secret(session, runtime.settings, endpoint_id, overlap_s=payload.overlap_s)

    return render(await run(call))


@operation(summary="An endpoint's latest messages with every attempt (newest first)", tags=TAGS, auth="admin",
           query=s.WebhookDeliveriesQuery, responses={200: s.WebhookDeliveryOut, **AUTH_ERRORS, 404: P, 422: P},
           list_of={200})  # fmt: skip
async def deliveries(request: Request) -> Response:
    runtime = await admin(request)
    q = query(request, s.WebhookDeliveriesQuery)

    async def call() -> list[dict[str, Any]]:
        async with runtime.db.session() as session:
            return await svc.deliveries(session, int_param(request, "endpoint_id"), limit=q.limit)

    return render(await run(call))


@operation(summary="Send a message again (same webhook-id) to every active endpoint that had it", tags=TAGS,
           auth="admin", responses={200: s.WebhookDeliveryOut, **AUTH_ERRORS, 404: P, 409: P},
           list_of={200})  # fmt: skip
async def replay(request: Request) -> Response:
    runtime = await admin(request)
    message_id = str(request.path_params["message_id"])

    async def call() -> list[dict[str, Any]]:
        async with runtime.db.session() as session:
            return await svc.replay(session, message_id)

    views = await run(call)
    runtime.bus.wake_webhook_senders()
    return render(views)


routes = [
    Route(f"{PREFIX}/webhooks", list_endpoints, methods=["GET"]),
    Route(f"{PREFIX}/webhooks", add_endpoint, methods=["POST"]),
    Route(f"{PREFIX}/webhooks/{{endpoint_id:int}}/disable", disable_endpoint, methods=["POST"]),
    Route(f"{PREFIX}/webhooks/{{endpoint_id:int}}/enable", enable_endpoint, methods=["POST"]),
    Route(f"{PREFIX}/webhooks/{{endpoint_id:int}}/rotate-secret", rotate_secret, methods=["POST"]),
    Route(f"{PREFIX}/webhooks/{{endpoint_id:int}}/deliveries", deliveries, methods=["GET"]),
    Route(f"{PREFIX}/webhooks/messages/{{message_id}}/replay", replay, methods=["POST"]),
]
