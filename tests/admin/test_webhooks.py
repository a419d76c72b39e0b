"""`/v1/admin/webhooks`: admin tokens only, validated bodies, refusals as problem+json with a stable code that change
nothing, the same views as `photobot webhooks …`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from photobot.app import create_app
from photobot.db import Database
from photobot.outbound import outbox
from photobot.services import access
from photobot.settings import Settings
from tests.support.servers import serve

Api = tuple[httpx.AsyncClient, dict[str, str], dict[str, str]]


@pytest.fixture
async def admin_api(database: Database, make_settings: Callable[..., Settings]) -> AsyncIterator[Api]:
    async with database.session() as session:
        _, admin = await access.create_token(session, "admin")
        _, app_token = await access.create_token(session, "app")
    settings = make_settings(database_url=database.url, allow_private_networks=False)
    app = create_app(settings, run_dispatcher=False)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield client, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {app_token}"}


async def test_add_list_rotate_disable_enable(admin_api: Api) -> None:
    client, admin, _ = admin_api
    r = await client.post("/v1/admin/webhooks", json={"url": "https://hooks.example.com/in", "types": ["job.failed"],
                                                      "description": "CRM"}, headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created.pop("secret")
    assert secret.startswith("whsec_") and r.headers["cache-control"] == "no-store"
    assert created["types"] == ["job.failed"] and created["description"] == "CRM" and created["event_id"] is None
    listed = (await client.get("/v1/admin/webhooks", headers=admin)).json()
    assert listed == [created]
    r = await client.post(f"/v1/admin/webhooks/{created['id']}/rotate-secret", json={"overlap_s": 60}, headers=admin)
    assert r.status_code == 200 and r.json()["secret"] not in (secret, None) and r.json()["old_secret_until"]
    r = await client.post(f"/v1/admin/webhooks/{created['id']}/disable", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["disabled_reason"]
    r = await client.post(f"/v1/admin/webhooks/{created['id']}/enable", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is True and r.json()["disabled_reason"] is None
    r = await client.get(f"/v1/admin/webhooks/{created['id']}/deliveries", params={"limit": 5}, headers=admin)
    assert r.status_code == 200 and r.json() == []
    assert "whsec_" not in (await client.get("/v1/admin/webhooks", headers=admin)).text


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "https://10.0.0.1/hook"}, 422, "address_not_allowed"),
        ({"url": "https://169.254.169.254/latest"}, 422, "address_not_allowed"),
        ({"url": "https://localhost/hook"}, 422, "address_not_allowed"),
        ({"url": "http://hooks.example.com/hook"}, 422, "url_not_allowed"),
        ({"url": "https://user:pw@hooks.example.com/"}, 422, "url_not_allowed"),
        ({"url": "not a url"}, 422, "url_not_allowed"),
        ({"url": "https://hooks.example.com/", "types": ["job.exploded"]}, 422, "validation_error"),
        ({"url": "https://hooks.example.com/", "types": []}, 422, "validation_error"),
        ({"url": "https://hooks.example.com/", "event_id": 999}, 404, "not_found"),
        ({"url": "https://hooks.example.com/", "secret": "whsec_mine"}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ],
)
async def test_add_refusals_change_nothing(admin_api: Api, body: dict[str, object], status: int, code: str) -> None:
    client, admin, _ = admin_api
    r = await client.post("/v1/admin/webhooks", json=body, headers=admin)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/v1/admin/webhooks", headers=admin)).json() == []


async def test_auth_and_unknown_ids(admin_api: Api, database: Database) -> None:
    client, admin, app_token = admin_api
    good = {"url": "https://hooks.example.com/in"}
    assert (await client.post("/v1/admin/webhooks", json=good)).status_code == 401
    assert (await client.post("/v1/admin/webhooks", json=good, headers=app_token)).status_code == 403
    assert (await client.get("/v1/admin/webhooks", headers=app_token)).status_code == 403
    for path in ("/v1/admin/webhooks/999/disable", "/v1/admin/webhooks/999/enable",
                 "/v1/admin/webhooks/999/rotate-secret", "/v1/admin/webhooks/messages/msg_nope/replay"):  # fmt: skip
        r = await client.post(path, headers=admin)
        assert (r.status_code, r.json()["code"]) == (404, "not_found"), path
    r = await client.get("/v1/admin/webhooks/999/deliveries", headers=admin)
    assert r.status_code == 404
    created = (await client.post("/v1/admin/webhooks", json=good, headers=admin)).json()
    r = await client.get(f"/v1/admin/webhooks/{created['id']}/deliveries", params={"limit": 0}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    r = await client.post(f"/v1/admin/webhooks/{created['id']}/rotate-secret", json={"overlap_s": -1}, headers=admin)
    assert r.status_code == 422
    # a message whose only endpoint is disabled cannot be replayed: 409, nothing changes
    async with database.session() as session:
        message_id = await outbox.publish(session, "job.completed", {"job_id": "j1"})
    await client.post(f"/v1/admin/webhooks/{created['id']}/disable", headers=admin)
    r = await client.post(f"/v1/admin/webhooks/messages/{message_id}/replay", headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "wrong_state")
    [view] = (await client.get(f"/v1/admin/webhooks/{created['id']}/deliveries", headers=admin)).json()
    assert view["state"] == "pending" and view["attempts"] == 0
