"""`photobot purchases list`: who bought which pack, and where each purchase stands."""

from __future__ import annotations

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env
from photobot.payments.packs import purchase_view
from photobot.payments.purchases import list_purchases


@click.group("purchases", help="Credit-pack purchases (Mercado Pago).")
def purchases() -> None:
    pass


@purchases.command("list")
@click.option("--event", "event_id", type=int, default=None, help="Only this event's purchases.")
@click.option("--user", "user_id", type=int, default=None, help="Only this user's purchases.")
@json_option
@run_async
async def list_command(event_id: int | None, user_id: int | None, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit([purchase_view(p) for p in await list_purchases(session, event_id=event_id, user_id=user_id)], as_json)
