"""The operator API: jobs: list, show, retry, fail and refund, resend, approve and hide (`{PREFIX}/…`, admin-scope
token)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import photobot.admin.schemas as s
from photobot.admin.common import AUTH_ERRORS, PREFIX, P, admin, body, query, render, run
from photobot.services import jobs as jobs_svc
from photobot.services import operations, privacy
from photobot.web.openapi import operation


@operation(summary="List jobs (filter by event, user, state, creation time)", tags=["admin: jobs"], auth="admin",
           query=s.JobsQuery, responses={200: s.AdminJobOut, **AUTH_ERRORS, 422: P}, list_of={200})  # fmt: skip
async def list_jobs(request: Request) -> Response:
    runtime = await admin(request)
    q = query(request, s.JobsQuery)

    async def call() -> list[s.AdminJobOut]:
        async with runtime.db.session() as session:
            rows = await jobs_svc.list_jobs(
                session, event_id=q.event_id, user_id=q.user_id, state=q.state, since=q.since, until=q.until,
                limit=q.limit, offset=q.offset,
            )  # fmt: skip
            return [s.AdminJobOut.of(j) for j in rows]

    return render(await run(call))


@operation(summary="Show a job with its transitions, ledger rows and notifications", tags=["admin: jobs"],
           auth="admin", responses={200: s.JobDetailOut, **AUTH_ERRORS, 404: P})  # fmt: skip
async def get_job(request: Request) -> Response:
    runtime = await admin(request)

    async def call() -> s.JobDetailOut:
        async with runtime.db.session() as session:
            return s.JobDetailOut.of(await operations.job_details(session, request.path_params["job_id"]))

    return render(await run(call))


@operation(
    summary="Retry a failed job (as a new job with a new credit)", tags=["admin: jobs"], auth="admin",
    description="The failed job stays failed; a new job with the same parameters and photo is created, a new "
    "credit reserved, and both jobs' transitions name each other.",
    responses={201: s.RetryOut, **AUTH_ERRORS, 402: P, 404: P, 409: P, 422: P},
)  # fmt: skip
async def retry_job(request: Request) -> Response:
    runtime = await admin(request)
    job_id = request.path_params["job_id"]

    async def call() -> s.RetryOut:
        job = await operations.retry_job(runtime.db, runtime.storage, runtime.bus, runtime.settings, job_id)
        return s.RetryOut(retry_of=job_id, job=s.AdminJobOut.of(job))

    return render(await run(call), 201)


@operation(
    summary="Fail a stuck job and refund its credit", tags=["admin: jobs"], auth="admin", body=s.FailIn,
    responses={200: s.AdminJobOut, 400: P, **AUTH_ERRORS, 404: P, 409: P, 422: P},
)  # fmt: skip
async def fail_job(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.FailIn, optional=True)

    async def call() -> s.AdminJobOut:
        job = await operations.fail_and_refund(
            runtime.db, runtime.bus, runtime.settings, request.path_params["job_id"], payload.reason
        )
        return s.AdminJobOut.of(job)

    return render(await run(call))


@operation(summary="Send one notification of a job again", tags=["admin: jobs"], auth="admin", body=s.ResendIn,
           responses={202: s.NotificationOut, 400: P, **AUTH_ERRORS, 404: P, 422: P})  # fmt: skip
async def resend(request: Request) -> Response:
    runtime = await admin(request)
    payload = await body(request, s.ResendIn)

    async def call() -> s.NotificationOut:
        row = await operations.resend(
            runtime.db, runtime.bus, runtime.settings, request.path_params["job_id"], payload.channel
        )
        return s.NotificationOut.of(row)

    return render(await run(call), 202)


@operation(
    summary="Approve a photo for its event's gallery and live wall (also shows a hidden one again)",
    tags=["admin: jobs"], auth="admin", responses={200: s.AdminJobOut, **AUTH_ERRORS, 404: P, 409: P},
)  # fmt: skip
async def approve_job(request: Request) -> Response:
    runtime = await admin(request)

    async def call() -> s.AdminJobOut:
        return s.AdminJobOut.of(await privacy.approve(runtime.db, runtime.bus, request.path_params["job_id"]))

    return render(await run(call))


@operation(
    summary="Hide a photo from its event's gallery and live walls at once (the guest's page still shows it)",
    tags=["admin: jobs"], auth="admin", responses={200: s.AdminJobOut, **AUTH_ERRORS, 404: P, 409: P},
)  # fmt: skip
async def hide_job(request: Request) -> Response:
    runtime = await admin(request)

    async def call() -> s.AdminJobOut:
        return s.AdminJobOut.of(await privacy.hide(runtime.db, runtime.bus, request.path_params["job_id"]))

    return render(await run(call))


routes = [
    Route(f"{PREFIX}/jobs", list_jobs, methods=["GET"]),
    Route(f"{PREFIX}/jobs/{{job_id}}", get_job, methods=["GET"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/retry", retry_job, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/fail", fail_job, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/resend", resend, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/approve", approve_job, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/hide", hide_job, methods=["POST"]),
]
