"""`photobot tokens …`: client tokens for kiosks (event), trusted backends (app) and operators (admin)."""

from __future__ import annotations

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env
from photobot.services import Invalid, public_view
from photobot.services import access as svc


@click.group("tokens", help="Client tokens: event (a kiosk), app (a trusted backend) or admin.")
def tokens() -> None:
    pass


@tokens.command("create")
@click.option("--event", "event_id", type=int, default=None, help="An event token for this event (a kiosk).")
@click.option("--app", "app", is_flag=True, help="An app token (names event_id or user_id per request).")
@click.option("--admin", "admin", is_flag=True, help="An admin token.")
@click.option("--label", default=None)
@json_option
@run_async
async def create_token(event_id: int | None, app: bool, admin: bool, label: str | None, as_json: bool) -> None:
    chosen = [name for name, on in (("event", event_id is not None), ("app", app), ("admin", admin)) if on]
    if len(chosen) != 1:
        raise Invalid("choose exactly one of --event ID, --app, --admin")
    async with session_scope(settings_from_env()) as session:
        record, token = await svc.create_token(session, chosen[0], event_id=event_id, label=label)
        emit(
            {**public_view(record), "token": token},
            as_json,
            text=lambda d: f"token {d['id']} ({d['scope']}): {d['token']}\n(shown once; store it now)",
        )


@tokens.command("revoke")
@click.argument("token_id", type=int)
@json_option
@run_async
async def revoke_token(token_id: int, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit(public_view(await svc.revoke_token(session, token_id)), as_json)


@tokens.command("list")
@json_option
@run_async
async def list_tokens(as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit([public_view(t) for t in await svc.list_tokens(session)], as_json)
