"""`photobot jobs …`: look at jobs (and, with the callback engine, retry them)."""

from __future__ import annotations

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env
from photobot.services import jobs as svc
from photobot.services import public_view


@click.group("jobs", help="Jobs: one guest photo through its state machine.")
def jobs() -> None:
    pass


@jobs.command("list")
@click.option("--event", "event_id", type=int, default=None)
@click.option("--user", "user_id", type=int, default=None)
@click.option("--state", default=None, help="pending, processing, submitting, waiting, finishing, completed, failed")
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@run_async
async def list_jobs(event_id: int | None, user_id: int | None, state: str | None, limit: int, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        rows = await svc.list_jobs(session, event_id=event_id, user_id=user_id, state=state, limit=limit)
        emit(
            [public_view(j) for j in rows],
            as_json,
            text=lambda rs: "\n".join(f"{r['id']}  {r['state']:<10} {r['style_id']:<10} {r['created_at']}" for r in rs),
        )


@jobs.command("show")
@click.argument("job_id")
@json_option
@run_async
async def show_job(job_id: str, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        job = await svc.get_job(session, job_id)
        data = public_view(job)
        data["transitions"] = [public_view(t) for t in await svc.transitions(session, job_id)]
        emit(data, as_json)
