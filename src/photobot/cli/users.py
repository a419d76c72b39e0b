"""`photobot users …`: app users (B2C accounts) and their credits."""

from __future__ import annotations

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env
from photobot.services import accounts as svc
from photobot.services import public_view


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
