"""The operator API: events and their numbers (`{PREFIX}/…`, admin-scope token)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import photobot.admin.schemas as s
from photobot.admin.common import AUTH_ERRORS, PREFIX, P, admin, body, int_param, query, render, run
from photobot.services import accounts, operations, privacy
from photobot.web.openapi import operation

NOT_NULL_EVENT_FIELDS = (
    "name", "language", "notify_urls", "alert_urls", "notify_on_failure", "templates", "consent_required",
    "moderation", "styles",
)  # fmt: skip


@operation(summary="List events", tags=["admin: events"], auth="admin", responses={200: s.EventOut, **AUTH_ERRORS},
           list_of={200})  # fmt: skip
async def list_events(request: Request) -> Response:
    runtime = await admin(request)
    async with runtime.db.session() as session:
        events = await accounts.list_events(session)
        return render([s.EventOut.of(e) for e in events])


@operation(summary="Create an event (credits, branding, alert URLs)", tags=["admin: events"], auth="admin",
           body=s.EventCreate, responses={201: s.EventOut, 400: P, **AUTH_ERRORS, 422: P})  # fmt: skip
async def create_event(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.EventCreate)
    fields = payload.model_dump(exclude={"name", "credits"}, exclude_none=True)

    async def call() -> s.EventOut:
        async with runtime.db.session() as session:
            event = await accounts.create_event(session, payload.name, payload.credits, **fields)
            return s.EventOut.of(event)

    return render(await run(call), 201)


@operation(summary="Show an event", tags=["admin: events"], auth="admin",
           responses={200: s.EventOut, **AUTH_ERRORS, 404: P})  # fmt: skip
async def get_event(request: Request) -> Response:
    runtime = await admin(request)

    async def call() -> s.EventOut:
        async with runtime.db.session() as session:
            return s.EventOut.of(await accounts.get_event(session, int_param(request, "event_id")))

    return render(await run(call))


@operation(summary="Change an event's name, branding, notification and alert URLs, offered styles, consent, "
           "moderation, per-guest cap and retention", tags=["admin: events"],
           auth="admin", body=s.EventUpdate,
           responses={200: s.EventOut, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def update_event(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.EventUpdate)
    fields = payload.model_dump(exclude_unset=True)
    for name in NOT_NULL_EVENT_FIELDS:  # null means "leave as is" for the columns that cannot be empty
        if name in fields and fields[name] is None:
            del fields[name]

    async def call() -> s.EventOut:
        async with runtime.db.session() as session:
            return s.EventOut.of(await accounts.update_event(session, int_param(request, "event_id"), **fields))

    return render(await run(call))


@operation(summary="Grant credits to an event", tags=["admin: events"], auth="admin", body=s.CreditsIn,
           responses={200: s.EventOut, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def event_credits(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.CreditsIn)

    async def call() -> s.EventOut:
        async with runtime.db.session() as session:
            return s.EventOut.of(await accounts.add_event_credits(session, int_param(request, "event_id"), payload.add))

    return render(await run(call))


@operation(summary="An event's numbers: jobs submitted, completed, failed; credits spent", tags=["admin: events"],
           auth="admin", query=s.StatsQuery,
           responses={200: s.EventStatsOut, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def event_stats(request: Request) -> Response:
    runtime = await admin(request)
    q = query(request, s.StatsQuery)

    async def call() -> s.EventStatsOut:
        async with runtime.db.session() as session:
            stats = await operations.event_stats(session, int_param(request, "event_id"), since=q.since, until=q.until)
            return s.EventStatsOut.of(stats)

    return render(await run(call))


@operation(summary="Numbers for every event", tags=["admin: events"], auth="admin", query=s.StatsQuery,
           responses={200: s.EventStatsOut, **AUTH_ERRORS, 422: P}, list_of={200})  # fmt: skip
async def all_stats(request: Request) -> Response:
    runtime = await admin(request)
    q = query(request, s.StatsQuery)
    async with runtime.db.session() as session:
        rows = await operations.all_event_stats(session, since=q.since, until=q.until)
        return render([s.EventStatsOut.of(r) for r in rows])


@operation(
    summary="Purge an event: delete every photo (inputs, results, thumbnails)", tags=["admin: events"],
    auth="admin", description="Jobs still in flight are failed and refunded; unsent messages are cancelled. The jobs "
    "(with their contact details) and ledger rows stay; guest pages and photo links answer 410.",
    responses={200: s.PurgeOut, **AUTH_ERRORS, 404: P},
)  # fmt: skip
async def purge_event(request: Request) -> Response:
    runtime = await admin(request)

    async def call() -> s.PurgeOut:
        report = await privacy.purge_event(
            runtime.db, runtime.storage, runtime.bus, runtime.settings, int_param(request, "event_id")
        )
        return s.PurgeOut.model_validate(report.as_dict())

    return render(await run(call))


routes = [
    Route(f"{PREFIX}/events", list_events, methods=["GET"]),
    Route(f"{PREFIX}/events", create_event, methods=["POST"]),
    Route(f"{PREFIX}/events/{{event_id:int}}", get_event, methods=["GET"]),
    Route(f"{PREFIX}/events/{{event_id:int}}", update_event, methods=["PATCH"]),
    Route(f"{PREFIX}/events/{{event_id:int}}/credits", event_credits, methods=["POST"]),
    Route(f"{PREFIX}/events/{{event_id:int}}/stats", event_stats, methods=["GET"]),
    Route(f"{PREFIX}/events/{{event_id:int}}/purge", purge_event, methods=["POST"]),
    Route(f"{PREFIX}/stats", all_stats, methods=["GET"]),
]
