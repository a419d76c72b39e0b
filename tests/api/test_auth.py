"""Client auth over real HTTP: bearer tokens by hash, revocation, and the event / app / admin scopes."""

from __future__ import annotations

import sqlalchemy as sa

from photobot.db.models import ClientToken
from photobot.services import access
from photobot.signing import hash_token
from tests.support.api import (
    assert_accepted,
    assert_problem,
    balance,
    job_row,
    new_event,
    new_token,
    submit_json,
    submit_multipart,
    unchanged,
)
from tests.support.stack import Stack


async def test_missing_malformed_unknown_and_revoked_tokens_are_401(api: Stack) -> None:
    _, revoked = await new_token(api, "event", event_id=api.event_id)
    async with api.db.session() as session:
        record = (
            await session.execute(sa.select(ClientToken).where(ClientToken.token_hash == hash_token(revoked)))
        ).scalar_one()
        assert record.id is not None
        await access.revoke_token(session, record.id)

    async with unchanged(api):
        for headers in (
            {},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer pbt_unknown-token"},
            {"Authorization": f"Bearer {revoked}"},
            {"Authorization": f"Bearer {api.kiosk_token}x"},
        ):
            response = await api.client.post(
                "/v1/jobs",
                data={"style": "pb_a"},
                files={"image": ("p.jpg", b"\xff\xd8\xff", "image/jpeg")},
                headers=headers,
            )
            body = assert_problem(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
            assert revoked not in response.text and api.kiosk_token not in response.text
            assert_problem(await api.client.get("/v1/jobs/abc", headers=headers), 401, "unauthorized")
            assert body["instance"] == "/v1/jobs"


async def test_tokens_are_stored_only_as_sha256(api: Stack) -> None:
    async with api.db.session() as session:
        hashes = set((await session.execute(sa.select(ClientToken.token_hash))).scalars())
    assert hash_token(api.kiosk_token) in hashes
    assert api.kiosk_token not in hashes


async def test_kiosk_submits_for_its_own_event_only(api: Stack) -> None:
    other = await new_event(api)
    async with unchanged(api):
        assert_problem(await submit_multipart(api, event_id=other), 403, "forbidden")
        assert_problem(await submit_json(api, event_id=other), 403, "forbidden")
        assert_problem(await submit_json(api, user_id=api.user_id), 422, "owner_not_allowed")
    # naming its own event is fine, and omitting it is the normal case
    own = assert_accepted(await submit_multipart(api, event_id=api.event_id))
    implicit = assert_accepted(await submit_json(api))
    for job_id in (own["id"], implicit["id"]):
        job = await job_row(api, job_id)
        assert (job.event_id, job.user_id) == (api.event_id, None)
    assert await balance(api, event_id=api.event_id) == 8
    assert await balance(api, event_id=other) == 5


async def test_app_token_names_exactly_one_of_event_and_user(api: Stack) -> None:
    async with unchanged(api):
        body = assert_problem(
            await submit_json(api, token=api.app_token, event_id=api.event_id, user_id=api.user_id),
            422,
            "owner_required",
        )
        assert "exactly one" in body["detail"]
        assert_problem(await submit_json(api, token=api.app_token), 422, "owner_required")
        assert_problem(
            await submit_multipart(api, token=api.app_token, event_id=api.event_id, user_id=api.user_id),
            422,
            "owner_required",
        )
        assert_problem(await submit_multipart(api, token=api.app_token), 422, "owner_required")
        assert_problem(await submit_json(api, token=api.app_token, event_id=9999), 422, "unknown_event")
        assert_problem(await submit_json(api, token=api.app_token, user_id=9999), 422, "unknown_user")

    b2b = assert_accepted(await submit_json(api, token=api.app_token, event_id=api.event_id))
    b2c = assert_accepted(await submit_multipart(api, token=api.app_token, user_id=api.user_id))
    assert ((await job_row(api, b2b["id"])).event_id, (await job_row(api, b2b["id"])).user_id) == (api.event_id, None)
    assert ((await job_row(api, b2c["id"])).event_id, (await job_row(api, b2c["id"])).user_id) == (None, api.user_id)
    assert await balance(api, event_id=api.event_id) == 9
    assert await balance(api, user_id=api.user_id) == 4


async def test_admin_may_charge_events_and_users(api: Stack) -> None:
    other = await new_event(api, credits=3)
    assert_accepted(await submit_json(api, token=api.admin_token, event_id=other))
    assert_accepted(await submit_json(api, token=api.admin_token, user_id=api.user_id))
    async with unchanged(api):
        assert_problem(
            await submit_json(api, token=api.admin_token, event_id=other, user_id=api.user_id), 422, "owner_required"
        )
        assert_problem(await submit_json(api, token=api.admin_token), 422, "owner_required")
    assert await balance(api, event_id=other) == 2
    assert await balance(api, user_id=api.user_id) == 4


async def test_get_job_scope_others_get_404(api: Stack) -> None:
    other_event = await new_event(api)
    _, other_kiosk = await new_token(api, "event", event_id=other_event)
    _, other_app = await new_token(api, "app")
    by_kiosk = assert_accepted(await submit_json(api))
    by_app = assert_accepted(await submit_json(api, token=api.app_token, user_id=api.user_id))

    async def status(job_id: str, token: str) -> int:
        response = await api.client.get(f"/v1/jobs/{job_id}", headers=api.auth_as(token))
        if response.status_code == 404:
            assert_problem(response, 404, "not_found")
        return response.status_code

    assert await status(by_kiosk["id"], api.kiosk_token) == 200
    assert await status(by_kiosk["id"], api.admin_token) == 200
    assert await status(by_kiosk["id"], other_kiosk) == 404
    assert await status(by_kiosk["id"], other_app) == 404
    assert await status(by_kiosk["id"], api.app_token) == 404
    assert await status(by_app["id"], api.app_token) == 200
    assert await status(by_app["id"], api.admin_token) == 200
    assert await status(by_app["id"], other_app) == 404
    assert await status(by_app["id"], api.kiosk_token) == 404
    assert await status("0" * 32, api.admin_token) == 404
