"""`photobot jobs …`: look at jobs, retry failed ones, fail and refund stuck ones, resend notifications, approve or
hide photos on the event's gallery and live wall.

retry, refund and resend call the same service functions as the admin API (`photobot.services.operations`)."""

from __future__ import annotations

from typing import Any

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env, stores
from photobot.db.models import Notification
from photobot.notify.channels import describe_target
from photobot.services import jobs as svc
from photobot.services import operations, privacy, public_view


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
    """A job with its history: state transitions, credit ledger rows and notifications (channel names for
    `jobs resend`), like `GET /v1/admin/jobs/{id}`."""
    async with session_scope(settings_from_env()) as session:
        details = await operations.job_details(session, job_id)
        data = public_view(details["job"])
        data["transitions"] = [public_view(t) for t in details["transitions"]]
        data["ledger"] = [public_view(r) for r in details["ledger"]]
        data["notifications"] = [_notification(n) for n in details["notifications"]]
        emit(data, as_json, text=_job_text)


def _notification(row: Notification) -> dict[str, Any]:
    data = public_view(row)
    data["target"] = describe_target(row.channel, row.target)  # push URLs carry tokens: never printed
    return data


def _at(value: str | None) -> str:
    return (value or "-").replace("T", " ").removesuffix("Z")[:23]


def _job_text(d: dict[str, Any]) -> str:
    """The human form: a header, then one line per transition, ledger row and notification."""
    owner = f"event {d['event_id']}" if d.get("event_id") is not None else f"user {d.get('user_id')}"
    out = [
        f"job {d['id']}  {d['state']}  (guest page /p/{d['public_id']})",
        f"  {owner}, style {d['style_id']}, cost {d['cost']}, {d['provider']} {d['model']}"
        + (f", task {d['provider_task_id']}" if d.get("provider_task_id") else "")
        + (f", key #{d['provider_key_id']}" if d.get("provider_key_id") else ""),
        f"  created {_at(d['created_at'])}, updated {_at(d['updated_at'])}"
        + (f", completed {_at(d['completed_at'])}" if d.get("completed_at") else ""),
    ]
    if d.get("error_code"):
        out.append(f"  error {d['error_code']}: {d.get('error_message') or ''}".rstrip())
    if d.get("result_key"):
        out.append(f"  result {d['result_key']}")
    out.append("transitions:")
    out += [
        f"  {_at(t['at'])}  {(t['from_state'] or '') + ' -> ' if t['from_state'] else ''}{t['to_state']}"
        + (f"  ({t['note']})" if t.get("note") else "")
        for t in d["transitions"]
    ] or ["  (none)"]
    out.append("ledger:")
    out += [
        f"  {_at(r['created_at'])}  {r['reason']:<8} {r['delta']:+d}"
        + (f"  event {r['event_id']}" if r.get("event_id") is not None else f"  user {r.get('user_id')}")
        + (f"  ({r['note']})" if r.get("note") else "")
        for r in d["ledger"]
    ] or ["  (none)"]
    out.append("notifications:")
    out += [
        f"  {n['channel']:<10} {n['kind']:<6} {n['state']:<8} {n['target']}  attempts {n['attempts']}"
        + (f", sent {_at(n['sent_at'])}" if n.get("sent_at") else "")
        + (f", last error: {n['last_error']}" if n.get("last_error") else "")
        for n in d["notifications"]
    ] or ["  (none)"]
    return "\n".join(out)


@jobs.command("retry")
@click.argument("job_id")
@json_option
@run_async
async def retry_command(job_id: str, as_json: bool) -> None:
    """Retry a failed job: a NEW job with the same parameters and photo, paid with a new credit."""
    settings = settings_from_env()
    async with stores(settings) as (db, storage, bus):
        job = await operations.retry_job(db, storage, bus, settings, job_id)
    data = {**public_view(job), "retry_of": job_id}
    emit(data, as_json, text=lambda d: f"job {d['retry_of']} retried as {d['id']} (pending; a worker picks it up)")


@jobs.command("refund")
@click.argument("job_id")
@click.option("--reason", default=None, help="Stored as the job's error message.")
@json_option
@run_async
async def refund_command(job_id: str, reason: str | None, as_json: bool) -> None:
    """Fail a stuck (in-flight) job and give its credit back."""
    settings = settings_from_env()
    async with stores(settings) as (db, _, bus):
        job = await operations.fail_and_refund(db, bus, settings, job_id, reason)
    emit(public_view(job), as_json, text=lambda d: f"job {d['id']} failed and its credit refunded")


@jobs.command("resend")
@click.argument("job_id")
@click.option("--channel", required=True, help="email, whatsapp or push:<n> (see `jobs show`).")
@json_option
@run_async
async def resend_command(job_id: str, channel: str, as_json: bool) -> None:
    """Queue a job's notification on CHANNEL again, even if it was already delivered."""
    settings = settings_from_env()
    async with stores(settings) as (db, _, bus):
        row = await operations.resend(db, bus, settings, job_id, channel)
    emit(
        {"job_id": row.job_id, "channel": row.channel, "state": row.state},
        as_json,
        text=lambda d: f"queued {d['channel']} for job {d['job_id']}; a worker sends it shortly",
    )


@jobs.command("approve")
@click.argument("job_id")
@json_option
@run_async
async def approve_command(job_id: str, as_json: bool) -> None:
    """Show a completed photo on its event's gallery and live wall (needed when the event's moderation is
    `approve`; also shows a hidden photo again)."""
    settings = settings_from_env()
    async with stores(settings) as (db, _, bus):
        job = await privacy.approve(db, bus, job_id)
    emit(public_view(job), as_json, text=lambda d: f"job {d['id']} approved: it is on the gallery and live wall")


@jobs.command("hide")
@click.argument("job_id")
@json_option
@run_async
async def hide_command(job_id: str, as_json: bool) -> None:
    """Take a photo off its event's gallery and live walls at once (the guest's own page still shows it)."""
    settings = settings_from_env()
    async with stores(settings) as (db, _, bus):
        job = await privacy.hide(db, bus, job_id)
    emit(public_view(job), as_json, text=lambda d: f"job {d['id']} hidden from the gallery and live wall")
