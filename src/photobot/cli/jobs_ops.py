"""`photobot jobs retry|refund` and `photobot events stats`: operator actions, the same service functions the
admin API calls (`photobot.services.operations`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env
from photobot.db import Database
from photobot.services import operations, public_view
from photobot.settings import Settings
from photobot.storage import Storage, open_storage


@asynccontextmanager
async def _stores(settings: Settings) -> AsyncIterator[tuple[Database, Storage]]:
    db = Database(settings.resolved_database_url)
    storage = open_storage(
        settings.resolved_storage_url, public_base_url=settings.public_base_url, secrets=settings.secret_keys()
    )
    try:
        yield db, storage
    finally:
        await storage.close()
        await db.close()


@click.command("retry")
@click.argument("job_id")
@json_option
@run_async
async def retry_command(job_id: str, as_json: bool) -> None:
    """Retry a failed job: a NEW job with the same parameters and photo, paid with a new credit."""
    settings = settings_from_env()
    async with _stores(settings) as (db, storage):
        job = await operations.retry_job(db, storage, settings, job_id)
    data = {**public_view(job), "retry_of": job_id}
    emit(data, as_json, text=lambda d: f"job {d['retry_of']} retried as {d['id']} (pending; a worker picks it up)")


@click.command("refund")
@click.argument("job_id")
@click.option("--reason", default=None, help="Stored as the job's error message.")
@json_option
@run_async
async def refund_command(job_id: str, reason: str | None, as_json: bool) -> None:
    """Fail a stuck (in-flight) job and give its credit back."""
    settings = settings_from_env()
    async with _stores(settings) as (db, _):
        job = await operations.fail_and_refund(db, settings, job_id, reason)
    emit(public_view(job), as_json, text=lambda d: f"job {d['id']} failed and its credit refunded")


@click.command("stats")
@click.argument("event_id", type=int, required=False)
@click.option("--since", type=click.DateTime(), default=None, help="Jobs created at or after (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Jobs created before (UTC).")
@json_option
@run_async
async def stats_command(event_id: int | None, since: datetime | None, until: datetime | None, as_json: bool) -> None:
    """Jobs submitted, completed, failed and credits spent, for one event (or all)."""
    async with session_scope(settings_from_env()) as session:
        if event_id is None:
            rows = [s.as_dict() for s in await operations.all_event_stats(session, since=since, until=until)]
        else:
            rows = [(await operations.event_stats(session, event_id, since=since, until=until)).as_dict()]
    emit(
        rows if event_id is None else rows[0],
        as_json,
        text=lambda data: "\n".join(
            f"event {r['event_id']} {r['name']}: submitted {r['submitted']}, completed {r['completed']}, "
            f"failed {r['failed']}, in flight {r['in_flight']}, credits spent {r['credits_spent']}, "
            f"balance {r['credits_balance']}"
            for r in (data if isinstance(data, list) else [data])
        ),
    )
