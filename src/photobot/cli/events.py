"""`photobot events …` and `photobot users …`: accounts and their credits."""

from __future__ import annotations

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env
from photobot.services import accounts as svc
from photobot.services import public_view


@click.group("events", help="Events (B2B): a booth spends its event's credits.")
def events() -> None:
    pass


@events.command("create")
@click.argument("name")
@click.option("--credits", "credits_", type=int, default=0, show_default=True, help="Initial credits (≥ 0).")
@json_option
@run_async
async def create_event(name: str, credits_: int, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        event = await svc.create_event(session, name, credits_)
        emit(public_view(event), as_json)


@events.command("list")
@json_option
@run_async
async def list_events(as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit([public_view(e) for e in await svc.list_events(session)], as_json)


@events.command("credits")
@click.argument("event_id", type=int)
@click.option("--add", "amount", type=int, required=True, help="Credits to grant (> 0).")
@json_option
@run_async
async def event_credits(event_id: int, amount: int, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit(public_view(await svc.add_event_credits(session, event_id, amount)), as_json)


@click.group("users", help="Users (B2C): an app user spends their own credits.")
def users() -> None:
    pass


@users.command("create")
@click.argument("external_id")
@click.option("--credits", "credits_", type=int, default=0, show_default=True)
@json_option
@run_async
async def create_user(external_id: str, credits_: int, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit(public_view(await svc.create_user(session, external_id, credits_)), as_json)


@users.command("list")
@json_option
@run_async
async def list_users(as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit([public_view(u) for u in await svc.list_users(session)], as_json)


@users.command("credits")
@click.argument("user_id", type=int)
@click.option("--add", "amount", type=int, required=True)
@json_option
@run_async
async def user_credits(user_id: int, amount: int, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit(public_view(await svc.add_user_credits(session, user_id, amount)), as_json)
