"""`photobot packs …`: the credit packs sold through Mercado Pago (the same service as `/v1/admin/packs`)."""

from __future__ import annotations

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env
from photobot.payments import packs as svc


@click.group("packs", help="Credit packs on sale (bought through Mercado Pago; see docs/payments.md).")
def packs() -> None:
    pass


@packs.command("create")
@click.argument("name")
@click.option("--credits", "credits_", type=int, required=True, help="Credits the pack grants.")
@click.option("--price", required=True, help="Price as decimal text, e.g. 9.90.")
@click.option("--currency", required=True, help="ISO 4217 code, e.g. BRL.")
@json_option
@run_async
async def create_pack(name: str, credits_: int, price: str, currency: str, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit(svc.pack_view(await svc.create_pack(session, name, credits_, price, currency)), as_json)


@packs.command("list")
@json_option
@run_async
async def list_packs(as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit([svc.pack_view(p) for p in await svc.list_packs(session)], as_json)


@packs.command("disable")
@click.argument("pack_id", type=int)
@json_option
@run_async
async def disable_pack(pack_id: int, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit(svc.pack_view(await svc.disable_pack(session, pack_id)), as_json)
