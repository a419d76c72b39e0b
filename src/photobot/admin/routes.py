"""The operator API under `/v1/admin/…` (admin-scope bearer token; no token 401, other scopes 403).

Every handler is thin: parse and validate with the models in `admin/schemas.py`, call the same service function
the CLI calls (`photobot.services.*`), render the result. Domain errors map to problems: not found 404,
invalid 422, wrong state 409, no credits 402.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.admin import schemas as s
from photobot.api.auth import require_client
from photobot.jobs.steps import publish_job
from photobot.models import JobState, TokenScope
from photobot.openapi import ProblemOut, operation
from photobot.problems import Problem, not_found, validation_error
from photobot.runtime import Runtime
from photobot.services import Invalid, NotFound, access, accounts, operations, styles
from photobot.services import jobs as jobs_svc

M = TypeVar("M", bound=BaseModel)
MAX_BODY = 256 * 1024
P = ProblemOut
AUTH_ERRORS: dict[int, Any] = {401: P, 403: P}
NOT_NULL_EVENT_FIELDS = ("name", "language", "notify_urls", "alert_urls", "notify_on_failure", "templates")


# --- plumbing -------------------------------------------------------------------------------------------------------
async def _admin(request: Request) -> Runtime:
    await require_client(request, TokenScope.admin)
    return request.app.state.runtime


def _errors(exc: ValidationError) -> Problem:
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"].removeprefix("Value error, ")}
        for e in exc.errors()
    ]
    return validation_error("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


async def _body(request: Request, model: type[M], *, optional: bool = False) -> M:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise Problem(413, "payload_too_large", "Payload too large", "Admin request bodies are limited to 256 KB.")
    if not raw.strip() and optional:
        raw = b"{}"
    try:
        data = json.loads(raw)
    except ValueError:
        raise Problem(400, "malformed_json", "Bad request", "The body is not valid JSON.") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _errors(exc) from None


def _query(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise _errors(exc) from None


def _json(data: Any, status: int = 200) -> Response:
    if isinstance(data, BaseModel):
        body: Any = data.model_dump(mode="json")
    elif isinstance(data, list):
        body = [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in data]
    else:
        body = data
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


async def _run(call: Callable[[], Awaitable[Any]]) -> Any:
    """Domain errors → problem details."""
    try:
        return await call()
    except NotFound as exc:
        raise not_found(str(exc)) from None
    except operations.NoCreditsLeft as exc:
        raise Problem(402, "no_credits", "No credits left", str(exc)) from None
    except operations.WrongState as exc:
        raise Problem(409, "wrong_state", "Conflict", str(exc)) from None
    except Invalid as exc:
        raise Problem(422, "invalid", "Invalid request", str(exc)) from None


def _int(request: Request, name: str) -> int:
    return int(request.path_params[name])


# --- events ---------------------------------------------------------------------------------------------------------
@operation(summary="List events", tags=["admin: events"], auth="admin", responses={200: s.EventOut, **AUTH_ERRORS},
           list_of={200})  # fmt: skip
async def list_events(request: Request) -> Response:
    runtime = await _admin(request)
    async with runtime.db.session() as session:
        events = await accounts.list_events(session)
        return _json([s.EventOut.of(e) for e in events])


@operation(summary="Create an event (credits, branding, alert URLs)", tags=["admin: events"], auth="admin",
           body=s.EventCreate, responses={201: s.EventOut, 400: P, **AUTH_ERRORS, 422: P})  # fmt: skip
async def create_event(request: Request) -> Response:
    runtime = await _admin(request)
    body = await _body(request, s.EventCreate)
    fields = body.model_dump(exclude={"name", "credits"}, exclude_none=True)

    async def call() -> s.EventOut:
        async with runtime.db.session() as session:
            event = await accounts.create_event(session, body.name, body.credits, **fields)
            return s.EventOut.of(event)

    return _json(await _run(call), 201)


@operation(summary="Show an event", tags=["admin: events"], auth="admin",
           responses={200: s.EventOut, **AUTH_ERRORS, 404: P})  # fmt: skip
async def get_event(request: Request) -> Response:
    runtime = await _admin(request)

    async def call() -> s.EventOut:
        async with runtime.db.session() as session:
            return s.EventOut.of(await accounts.get_event(session, _int(request, "event_id")))

    return _json(await _run(call))


@operation(summary="Change an event's name, branding, notification and alert URLs", tags=["admin: events"],
           auth="admin", body=s.EventUpdate,
           responses={200: s.EventOut, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def update_event(request: Request) -> Response:
    runtime = await _admin(request)
    body = await _body(request, s.EventUpdate)
    fields = body.model_dump(exclude_unset=True)
    for name in NOT_NULL_EVENT_FIELDS:  # null means "leave as is" for the columns that cannot be empty
        if name in fields and fields[name] is None:
            del fields[name]

    async def call() -> s.EventOut:
        async with runtime.db.session() as session:
            return s.EventOut.of(await accounts.update_event(session, _int(request, "event_id"), **fields))

    return _json(await _run(call))


@operation(summary="Grant credits to an event", tags=["admin: events"], auth="admin", body=s.CreditsIn,
           responses={200: s.EventOut, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def event_credits(request: Request) -> Response:
    runtime = await _admin(request)
    body = await _body(request, s.CreditsIn)

    async def call() -> s.EventOut:
        async with runtime.db.session() as session:
            return s.EventOut.of(await accounts.add_event_credits(session, _int(request, "event_id"), body.add))

    return _json(await _run(call))


@operation(summary="An event's numbers: jobs submitted, completed, failed; credits spent", tags=["admin: events"],
           auth="admin", query=s.StatsQuery,
           responses={200: s.EventStatsOut, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def event_stats(request: Request) -> Response:
    runtime = await _admin(request)
    query = _query(request, s.StatsQuery)

    async def call() -> s.EventStatsOut:
        async with runtime.db.session() as session:
            stats = await operations.event_stats(
                session, _int(request, "event_id"), since=query.since, until=query.until
            )
            return s.EventStatsOut.of(stats)

    return _json(await _run(call))


@operation(summary="Numbers for every event", tags=["admin: events"], auth="admin", query=s.StatsQuery,
           responses={200: s.EventStatsOut, **AUTH_ERRORS, 422: P}, list_of={200})  # fmt: skip
async def all_stats(request: Request) -> Response:
    runtime = await _admin(request)
    query = _query(request, s.StatsQuery)
    async with runtime.db.session() as session:
        rows = await operations.all_event_stats(session, since=query.since, until=query.until)
        return _json([s.EventStatsOut.of(r) for r in rows])


# --- users ----------------------------------------------------------------------------------------------------------
@operation(summary="List app users", tags=["admin: users"], auth="admin", responses={200: s.UserOut, **AUTH_ERRORS},
           list_of={200})  # fmt: skip
async def list_users(request: Request) -> Response:
    runtime = await _admin(request)
    async with runtime.db.session() as session:
        return _json([s.UserOut.of(u) for u in await accounts.list_users(session)])


@operation(summary="Create an app user (B2C credits)", tags=["admin: users"], auth="admin", body=s.UserCreate,
           responses={201: s.UserOut, 400: P, **AUTH_ERRORS, 422: P})  # fmt: skip
async def create_user(request: Request) -> Response:
    runtime = await _admin(request)
    body = await _body(request, s.UserCreate)

    async def call() -> s.UserOut:
        async with runtime.db.session() as session:
            return s.UserOut.of(await accounts.create_user(session, body.external_id, body.credits))

    return _json(await _run(call), 201)


@operation(summary="Grant credits to an app user", tags=["admin: users"], auth="admin", body=s.CreditsIn,
           responses={200: s.UserOut, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def user_credits(request: Request) -> Response:
    runtime = await _admin(request)
    body = await _body(request, s.CreditsIn)

    async def call() -> s.UserOut:
        async with runtime.db.session() as session:
            return s.UserOut.of(await accounts.add_user_credits(session, _int(request, "user_id"), body.add))

    return _json(await _run(call))


# --- styles ---------------------------------------------------------------------------------------------------------
@operation(summary="List styles (active and inactive)", tags=["admin: styles"], auth="admin",
           responses={200: s.StyleOut, **AUTH_ERRORS}, list_of={200})  # fmt: skip
async def list_styles(request: Request) -> Response:
    runtime = await _admin(request)
    async with runtime.db.session() as session:
        return _json([s.StyleOut.of(x) for x in await styles.list_styles(session)])


class StylesIn(BaseModel):
    """A list of styles to create or replace (the same shape as a style file)."""

    styles: list[styles.StyleIn]


@operation(summary="Create or replace styles", tags=["admin: styles"], auth="admin", body=StylesIn,
           responses={200: s.StyleOut, 400: P, **AUTH_ERRORS, 422: P}, list_of={200})  # fmt: skip
async def upsert_styles(request: Request) -> Response:
    runtime = await _admin(request)
    body = await _body(request, StylesIn)

    async def call() -> list[s.StyleOut]:
        async with runtime.db.session() as session:
            return [s.StyleOut.of(x) for x in await styles.upsert_styles(session, body.styles)]

    return _json(await _run(call))


@operation(summary="Show a style", tags=["admin: styles"], auth="admin",
           responses={200: s.StyleOut, **AUTH_ERRORS, 404: P})  # fmt: skip
async def get_style(request: Request) -> Response:
    runtime = await _admin(request)

    async def call() -> s.StyleOut:
        async with runtime.db.session() as session:
            return s.StyleOut.of(await styles.get_style(session, request.path_params["style_id"]))

    return _json(await _run(call))


# --- provider keys --------------------------------------------------------------------------------------------------
@operation(summary="List provider API keys (masked)", tags=["admin: keys"], auth="admin",
           responses={200: s.KeyOut, **AUTH_ERRORS}, list_of={200})  # fmt: skip
async def list_keys(request: Request) -> Response:
    runtime = await _admin(request)
    async with runtime.db.session() as session:
        return _json([s.KeyOut.of(k) for k in await access.list_keys(session, request.query_params.get("provider"))])


@operation(summary="Add a provider API key to the pool", tags=["admin: keys"], auth="admin", body=s.KeyCreate,
           responses={201: s.KeyOut, 400: P, **AUTH_ERRORS, 422: P})  # fmt: skip
async def add_key(request: Request) -> Response:
    runtime = await _admin(request)
    body = await _body(request, s.KeyCreate)

    async def call() -> s.KeyOut:
        async with runtime.db.session() as session:
            return s.KeyOut.of(await access.add_key(session, body.provider, body.secret, body.label))

    return _json(await _run(call), 201)


@operation(summary="Disable a provider API key", tags=["admin: keys"], auth="admin", body=s.KeyDisable,
           responses={200: s.KeyOut, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def disable_key(request: Request) -> Response:
    runtime = await _admin(request)
    body = await _body(request, s.KeyDisable, optional=True)

    async def call() -> s.KeyOut:
        async with runtime.db.session() as session:
            return s.KeyOut.of(await access.disable_key(session, _int(request, "key_id"), body.reason))

    return _json(await _run(call))


@operation(summary="Enable a provider API key again (clears cool-down and failures)", tags=["admin: keys"],
           auth="admin", responses={200: s.KeyOut, **AUTH_ERRORS, 404: P})  # fmt: skip
async def enable_key(request: Request) -> Response:
    runtime = await _admin(request)

    async def call() -> s.KeyOut:
        async with runtime.db.session() as session:
            return s.KeyOut.of(await access.enable_key(session, _int(request, "key_id")))

    return _json(await _run(call))


# --- client tokens --------------------------------------------------------------------------------------------------
@operation(summary="List client tokens (never the tokens themselves)", tags=["admin: tokens"], auth="admin",
           responses={200: s.TokenOut, **AUTH_ERRORS}, list_of={200})  # fmt: skip
async def list_tokens(request: Request) -> Response:
    runtime = await _admin(request)
    async with runtime.db.session() as session:
        return _json([s.TokenOut.of(t) for t in await access.list_tokens(session)])


@operation(summary="Create a client token (shown once)", tags=["admin: tokens"], auth="admin", body=s.TokenCreate,
           responses={201: s.TokenCreated, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def create_token(request: Request) -> Response:
    runtime = await _admin(request)
    body = await _body(request, s.TokenCreate)

    async def call() -> s.TokenCreated:
        async with runtime.db.session() as session:
            record, token = await access.create_token(session, body.scope, event_id=body.event_id, label=body.label)
            return s.TokenCreated.model_validate({**s.TokenOut.of(record).model_dump(), "token": token})

    return _json(await _run(call), 201)


@operation(summary="Revoke a client token", tags=["admin: tokens"], auth="admin",
           responses={200: s.TokenOut, **AUTH_ERRORS, 404: P})  # fmt: skip
async def revoke_token(request: Request) -> Response:
    runtime = await _admin(request)

    async def call() -> s.TokenOut:
        async with runtime.db.session() as session:
            return s.TokenOut.of(await access.revoke_token(session, _int(request, "token_id")))

    return _json(await _run(call))


# --- jobs -----------------------------------------------------------------------------------------------------------
@operation(summary="List jobs (filter by event, user, state, creation time)", tags=["admin: jobs"], auth="admin",
           query=s.JobsQuery, responses={200: s.AdminJobOut, **AUTH_ERRORS, 422: P}, list_of={200})  # fmt: skip
async def list_jobs(request: Request) -> Response:
    runtime = await _admin(request)
    q = _query(request, s.JobsQuery)

    async def call() -> list[s.AdminJobOut]:
        async with runtime.db.session() as session:
            rows = await jobs_svc.list_jobs(
                session, event_id=q.event_id, user_id=q.user_id, state=q.state, since=q.since, until=q.until,
                limit=q.limit, offset=q.offset,
            )  # fmt: skip
            return [s.AdminJobOut.of(j) for j in rows]

    return _json(await _run(call))


@operation(summary="Show a job with its transitions, ledger rows and notifications", tags=["admin: jobs"],
           auth="admin", responses={200: s.JobDetailOut, **AUTH_ERRORS, 404: P})  # fmt: skip
async def get_job(request: Request) -> Response:
    runtime = await _admin(request)

    async def call() -> s.JobDetailOut:
        async with runtime.db.session() as session:
            return s.JobDetailOut.of(await operations.job_details(session, request.path_params["job_id"]))

    return _json(await _run(call))


@operation(
    summary="Retry a failed job (as a new job with a new credit)", tags=["admin: jobs"], auth="admin",
    description="The failed job stays failed; a new job with the same parameters and photo is created, a new "
    "credit reserved, and both jobs' transitions name each other.",
    responses={201: s.RetryOut, **AUTH_ERRORS, 402: P, 404: P, 409: P, 422: P},
)  # fmt: skip
async def retry_job(request: Request) -> Response:
    runtime = await _admin(request)
    job_id = request.path_params["job_id"]

    async def call() -> s.RetryOut:
        job = await operations.retry_job(runtime.db, runtime.storage, runtime.settings, job_id)
        return s.RetryOut(retry_of=job_id, job=s.AdminJobOut.of(job))

    result = await _run(call)
    await runtime.bus.wake()
    return _json(result, 201)


@operation(
    summary="Fail a stuck job and refund its credit", tags=["admin: jobs"], auth="admin", body=s.FailIn,
    responses={200: s.AdminJobOut, 400: P, **AUTH_ERRORS, 404: P, 409: P, 422: P},
)  # fmt: skip
async def fail_job(request: Request) -> Response:
    runtime = await _admin(request)
    body = await _body(request, s.FailIn, optional=True)

    async def call() -> s.AdminJobOut:
        job = await operations.fail_and_refund(runtime.db, runtime.settings, request.path_params["job_id"], body.reason)
        await publish_job(runtime, job, JobState.failed)
        return s.AdminJobOut.of(job)

    return _json(await _run(call))


@operation(summary="Send one notification of a job again", tags=["admin: jobs"], auth="admin", body=s.ResendIn,
           responses={202: s.NotificationOut, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def resend(request: Request) -> Response:
    runtime = await _admin(request)
    body = await _body(request, s.ResendIn)

    async def call() -> s.NotificationOut:
        row = await operations.resend(runtime.db, runtime.settings, request.path_params["job_id"], body.channel)
        return s.NotificationOut.of(row)

    result = await _run(call)
    await runtime.bus.wake()
    return _json(result, 202)


PREFIX = "/v1/admin"
routes = [
    Route(f"{PREFIX}/events", list_events, methods=["GET"]),
    Route(f"{PREFIX}/events", create_event, methods=["POST"]),
    Route(f"{PREFIX}/events/{{event_id:int}}", get_event, methods=["GET"]),
    Route(f"{PREFIX}/events/{{event_id:int}}", update_event, methods=["PATCH"]),
    Route(f"{PREFIX}/events/{{event_id:int}}/credits", event_credits, methods=["POST"]),
    Route(f"{PREFIX}/events/{{event_id:int}}/stats", event_stats, methods=["GET"]),
    Route(f"{PREFIX}/stats", all_stats, methods=["GET"]),
    Route(f"{PREFIX}/users", list_users, methods=["GET"]),
    Route(f"{PREFIX}/users", create_user, methods=["POST"]),
    Route(f"{PREFIX}/users/{{user_id:int}}/credits", user_credits, methods=["POST"]),
    Route(f"{PREFIX}/styles", list_styles, methods=["GET"]),
    Route(f"{PREFIX}/styles", upsert_styles, methods=["PUT"]),
    Route(f"{PREFIX}/styles/{{style_id}}", get_style, methods=["GET"]),
    Route(f"{PREFIX}/keys", list_keys, methods=["GET"]),
    Route(f"{PREFIX}/keys", add_key, methods=["POST"]),
    Route(f"{PREFIX}/keys/{{key_id:int}}/disable", disable_key, methods=["POST"]),
    Route(f"{PREFIX}/keys/{{key_id:int}}/enable", enable_key, methods=["POST"]),
    Route(f"{PREFIX}/tokens", list_tokens, methods=["GET"]),
    Route(f"{PREFIX}/tokens", create_token, methods=["POST"]),
    Route(f"{PREFIX}/tokens/{{token_id:int}}", revoke_token, methods=["DELETE"]),
    Route(f"{PREFIX}/jobs", list_jobs, methods=["GET"]),
    Route(f"{PREFIX}/jobs/{{job_id}}", get_job, methods=["GET"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/retry", retry_job, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/fail", fail_job, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/resend", resend, methods=["POST"]),
]
