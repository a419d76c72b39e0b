"""`photobot keys …`: the provider API key pool (keys are never printed beyond their last 4 characters)."""

from __future__ import annotations

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env
from photobot.services import access as svc
from photobot.services import public_view


@click.group("keys", help="Provider API keys (never printed beyond their last 4 characters).")
def keys() -> None:
    pass


@keys.command("add")
@click.option("--provider", type=click.Choice(["kie", "fal"]), required=True)
@click.argument("secret")
@click.option("--label", default=None)
@json_option
@run_async
async def add_key(provider: str, secret: str, label: str | None, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit(public_view(await svc.add_key(session, provider, secret, label)), as_json)


@keys.command("list")
@json_option
@run_async
async def list_keys(as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit([public_view(k) for k in await svc.list_keys(session)], as_json)


@keys.command("disable")
@click.argument("key_id", type=int)
@json_option
@run_async
async def disable_key(key_id: int, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit(public_view(await svc.disable_key(session, key_id)), as_json)


@keys.command("enable")
@click.argument("key_id", type=int)
@json_option
@run_async
async def enable_key(key_id: int, as_json: bool) -> None:
    """Use a disabled or cooled-down key again (its failure count starts afresh)."""
    async with session_scope(settings_from_env()) as session:
        emit(public_view(await svc.enable_key(session, key_id)), as_json)
