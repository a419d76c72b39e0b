"""`/v1/admin/packs` and `/v1/admin/purchases`: admin tokens only, validated bodies, the same views as the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from photobot.app import create_app
from photobot.db import Database
from photobot.services import access
from photobot.settings import Settings
from tests.support.servers import serve


@pytest.fixture
async def admin_api(
    database: Database, make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], dict[str, str]]]:
    async with database.session() as session:
        _, admin = await access.create_token(session, "admin")
        _, app_token = await access.create_token(session, "app")
    app = create_app(make_settings(database_url=database.url), run_dispatcher=False)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield client, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {app_token}"}


async def test_create_list_disable(admin_api: tuple[httpx.AsyncClient, dict[str, str], dict[str, str]]) -> None:
    client, admin, _ = admin_api
    body = {"name": "Party", "credits": 50, "price": "39.90", "currency": "BRL"}
    r = await client.post("/v1/admin/packs", json=body, headers=admin)
    assert r.status_code == 201
    pack = r.json()
    assert pack == {"id": pack["id"], "name": "Party", "credits": 50, "price": "39.90", "currency": "BRL",
                    "active": True}  # fmt: skip
    assert (await client.get("/v1/admin/packs", headers=admin)).json() == [pack]
    r = await client.post(f"/v1/admin/packs/{pack['id']}/disable", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
    r = await client.post("/v1/admin/packs/999/disable", headers=admin)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert (await client.get("/v1/admin/purchases", headers=admin)).json() == []


async def test_refusals(admin_api: tuple[httpx.AsyncClient, dict[str, str], dict[str, str]]) -> None:
    client, admin, app_token = admin_api
    good = {"name": "Party", "credits": 50, "price": "39.90", "currency": "BRL"}
    assert (await client.post("/v1/admin/packs", json=good)).status_code == 401
    assert (await client.post("/v1/admin/packs", json=good, headers=app_token)).status_code == 403
    for bad in ({**good, "price": "1.234"}, {**good, "price": "0"}, {**good, "currency": "brl"},
                {**good, "credits": 0}, {**good, "extra": 1}, {"name": "x"}):  # fmt: skip
        r = await client.post("/v1/admin/packs", json=bad, headers=admin)
        assert r.status_code == 422, bad
    r = await client.get("/v1/admin/purchases", params={"event_id": "x"}, headers=admin)
    assert r.status_code == 422
    assert (await client.get("/v1/admin/packs", headers=admin)).json() == []
