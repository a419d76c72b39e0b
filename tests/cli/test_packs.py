"""`photobot packs create|list|disable` and `photobot purchases list`, run as real child processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from photobot.db import Database
from photobot.db.models import Purchase, utcnow
from tests.support.cli import failed, ok
from tests.support.cli import run_photobot as photobot

pytestmark = pytest.mark.timeout(300)


async def test_packs_create_list_disable(database: Database, tmp_path: Path) -> None:
    url = database.url
    created = ok(await photobot(url, tmp_path, "packs", "create", "Starter", "--credits", "10", "--price", "9.90",
                                "--currency", "BRL", "--json"))  # fmt: skip
    assert created == {"id": created["id"], "name": "Starter", "credits": 10, "price": "9.90", "currency": "BRL",
                       "active": True}  # fmt: skip
    listed = ok(await photobot(url, tmp_path, "packs", "list", "--json"))
    assert listed == [created]
    disabled = ok(await photobot(url, tmp_path, "packs", "disable", str(created["id"]), "--json"))
    assert disabled["active"] is False
    failed(await photobot(url, tmp_path, "packs", "disable", "999", "--json"), "pack 999 not found")


@pytest.mark.parametrize(
    ("price", "currency", "message"),
    [("9.999", "BRL", "two decimals"), ("0", "BRL", "more than 0"), ("abc", "BRL", "a number"),
     ("9.90", "REAL", "three-letter"), ("-1", "BRL", "more than 0")],
)  # fmt: skip
async def test_packs_create_refuses_bad_input(
    sqlite_database: Database, tmp_path: Path, price: str, currency: str, message: str
) -> None:
    result = await photobot(sqlite_database.url, tmp_path, "packs", "create", "X", "--credits", "5", "--price",
                            price, "--currency", currency, "--json")  # fmt: skip
    failed(result, message)
    assert ok(await photobot(sqlite_database.url, tmp_path, "packs", "list", "--json")) == []


async def test_purchases_list_filters_by_owner(database: Database, tmp_path: Path) -> None:
    from photobot.payments import packs
    from photobot.services import accounts

    async with database.session() as session:
        event = await accounts.create_event(session, "E")
        user = await accounts.create_user(session, "u-1")
        pack = await packs.create_pack(session, "P", 3, "1.00", "BRL")
        now = utcnow()
        for owner in ({"event_id": event.id}, {"user_id": user.id}):
            session.add(Purchase(pack_id=pack.id or 0, credits=3, price_cents=100, currency="BRL", expires_at=now,
                                 **owner))  # fmt: skip
    everything = ok(await photobot(database.url, tmp_path, "purchases", "list", "--json"))
    assert len(everything) == 2 and {p["status"] for p in everything} == {"pending"}
    by_event = ok(await photobot(database.url, tmp_path, "purchases", "list", "--event", str(event.id), "--json"))
    assert [p["event_id"] for p in by_event] == [event.id]
    by_user = ok(await photobot(database.url, tmp_path, "purchases", "list", "--user", str(user.id), "--json"))
    assert [p["user_id"] for p in by_user] == [user.id]
