"""`photobot webhooks …`: signed outbound webhooks to the operator's systems (the same service as
`/v1/admin/webhooks`; docs/webhooks.md)."""

from __future__ import annotations

from typing import Any

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env, stores
from photobot.outbound.outbox import EVENT_TYPES
from photobot.services import webhooks as svc


@click.group("webhooks", help="Outbound webhooks: signed messages (Standard Webhooks) to your own systems.")
def webhooks() -> None:
    pass


def _endpoint_line(view: dict[str, Any]) -> str:
    scope = f"event {view['event_id']}" if view["event_id"] is not None else "every event"
    state = "active" if view["active"] else f"disabled ({view['disabled_reason']})"
    return f"{view['id']}  {view['url']}  {','.join(view['types'])}  {scope}  {state}"


def _with_secret(view: dict[str, Any]) -> str:
    return f"{_endpoint_line(view)}\nsecret: {view['secret']}  (shown once: store it in the receiver now)"


@webhooks.command("add")
@click.argument("url")
@click.option("--event", "event_id", type=int, default=None, help="Hear this event only (default: every event).")
@click.option("--types", default=None, help=f"Comma-separated message types (default: all): {','.join(EVENT_TYPES)}.")
@click.option("--description", default=None, help="A note for operators (at most 200 characters).")
@json_option
@run_async
async def add(url: str, event_id: int | None, types: str | None, description: str | None, as_json: bool) -> None:
    """Add an endpoint; prints its signing secret once."""
    settings = settings_from_env()
    async with session_scope(settings) as session:
        view = await svc.add_endpoint(session, settings, url, event_id=event_id, types=types, description=description)
    emit(view, as_json, text=_with_secret)


@webhooks.command("list")
@json_option
@run_async
async def list_endpoints(as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        views = await svc.list_endpoints(session)
    emit(views, as_json, text=lambda vs: "\n".join(_endpoint_line(v) for v in vs))


@webhooks.command("disable")
@click.argument("endpoint_id", type=int)
@json_option
@run_async
async def disable(endpoint_id: int, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit(await svc.disable_endpoint(session, endpoint_id), as_json, text=_endpoint_line)


@webhooks.command("enable")
@click.argument("endpoint_id", type=int)
@json_option
@run_async
async def enable(endpoint_id: int, as_json: bool) -> None:
    """Send to a disabled endpoint again (what it missed needs `webhooks replay`)."""
    async with session_scope(settings_from_env()) as session:
        emit(await svc.enable_endpoint(session, endpoint_id), as_json, text=_endpoint_line)


@webhooks.command("rotate-secret")
@click.argument("endpoint_id", type=int)
@click.option("--overlap", "overlap_s", type=int, default=None,
              help="Seconds the old secret keeps signing too (default PHOTOBOT_WEBHOOK_SECRET_OVERLAP_S).")  # fmt: skip
@json_option
@run_async
async def rotate_secret(endpoint_id: int, overlap_s: int | None, as_json: bool) -> None:
    """A new signing secret (printed once); the old one signs as well until the overlap ends."""
    settings = settings_from_env()
    async with session_scope(settings) as session:
        view = await svc.rotate_secret(session, settings, endpoint_id, overlap_s=overlap_s)
    emit(view, as_json, text=_with_secret)


@webhooks.command("deliveries")
@click.argument("endpoint_id", type=int)
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@run_async
async def deliveries(endpoint_id: int, limit: int, as_json: bool) -> None:
    """The endpoint's latest messages with their attempts, status codes and next try."""
    async with session_scope(settings_from_env()) as session:
        views = await svc.deliveries(session, endpoint_id, limit=limit)

    def text(vs: list[dict[str, Any]]) -> str:
        lines = []
        for v in vs:
            statuses = ",".join(str(h["status"] or "-") for h in v["history"]) or "-"
            after = f"next {v['next_attempt_at']}" if v["next_attempt_at"] else (v["delivered_at"] or "")
            head = f"{v['message_id']}  {v['type']:<17} {v['state']:<9}"
            lines.append(f"{head} tries={v['attempts']} [{statuses}] {after}")
        return "\n".join(lines)

    emit(views, as_json, text=text)


@webhooks.command("replay")
@click.argument("message_id")
@json_option
@run_async
async def replay(message_id: str, as_json: bool) -> None:
    """Send a message again (same webhook-id) to every active endpoint that had it."""
    settings = settings_from_env()
    async with stores(settings) as (db, _storage, bus):
        async with db.session() as session:
            views = await svc.replay(session, message_id)
        bus.wake_webhook_senders()
    emit(
        views, as_json, text=lambda vs: "\n".join(f"{v['message_id']} to endpoint {v['endpoint_id']}: due" for v in vs)
    )
