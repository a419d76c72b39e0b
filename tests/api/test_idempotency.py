"""Idempotency-Key: replay returns the original job, a different request conflicts, races make one job."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.support.api import (
    assert_accepted,
    assert_problem,
    balance,
    ledger_sum,
    new_token,
    snapshot,
    submit_json,
    submit_multipart,
    unchanged,
)
from tests.support.images import jpeg
from tests.support.stack import Stack


async def test_replay_and_conflict(api: Stack) -> None:
    key = {"Idempotency-Key": "booth-7-photo-0001"}
    photo = jpeg(color="navy")
    first_response = await submit_multipart(api, photo, headers=key, guest_id="g1", email="a@example.com")
    first = assert_accepted(first_response)
    assert "idempotent-replayed" not in first_response.headers

    async with unchanged(api):
        # same key, same request: the original job, no second charge, no second photo
        again = await submit_multipart(api, photo, headers=key, guest_id="g1", email="a@example.com")
        assert assert_accepted(again) == first
        assert again.headers["idempotent-replayed"] == "true"
        # the same request sent as JSON (same fields, same image bytes) is the same request
        assert (
            assert_accepted(await submit_json(api, photo, headers=key, guest_id="g1", email="a@example.com")) == first
        )
        # same key, anything different: 409
        for changed in (
            {"guest_id": "g2", "email": "a@example.com"},
            {"guest_id": "g1", "email": "a@example.com", "style": "pb_b"},
            {"guest_id": "g1"},
        ):
            body = assert_problem(
                await submit_multipart(api, photo, headers=key, **changed), 409, "idempotency_conflict"
            )
            assert "Idempotency-Key" in body["detail"]
        other_photo = jpeg(color="olive")
        assert_problem(
            await submit_multipart(api, other_photo, headers=key, guest_id="g1", email="a@example.com"),
            409,
            "idempotency_conflict",
        )
    assert await balance(api, event_id=api.event_id) == 9

    # keys are scoped per token: another kiosk of the same event using the same key gets its own job
    _, second_kiosk = await new_token(api, "event", event_id=api.event_id)
    other = assert_accepted(
        await submit_multipart(api, photo, token=second_kiosk, headers=key, guest_id="g1", email="a@example.com")
    )
    assert other["id"] != first["id"]
    assert await balance(api, event_id=api.event_id) == 8 == await ledger_sum(api, event_id=api.event_id)


async def test_owner_spelled_or_implied_is_the_same_request(api: Stack) -> None:
    key = {"Idempotency-Key": "kiosk-retry"}
    first = assert_accepted(await submit_multipart(api, headers=key))
    async with unchanged(api):
        # the retry names the kiosk's own event explicitly (or sends it empty, as an HTML form does)
        assert assert_accepted(await submit_multipart(api, headers=key, event_id=api.event_id)) == first
        assert assert_accepted(await submit_multipart(api, headers=key, event_id="")) == first
        assert assert_accepted(await submit_json(api, headers=key, event_id=api.event_id)) == first


async def test_refused_request_does_not_burn_the_key(api: Stack) -> None:
    key = {"Idempotency-Key": "retry-after-fix"}
    async with unchanged(api):
        assert_problem(await submit_json(api, headers=key, style="nope"), 422, "unknown_style")
    assert_accepted(await submit_json(api, headers=key))


async def test_twenty_concurrent_requests_with_one_key_make_one_job(api: Stack) -> None:
    photo = jpeg(color="teal")
    before = await snapshot(api)
    async with httpx.AsyncClient(base_url=api.base_url, timeout=60, limits=httpx.Limits(max_connections=20)) as client:

        async def one() -> httpx.Response:
            return await client.post(
                "/v1/jobs",
                data={"style": "pb_a"},
                files={"image": ("p.jpg", photo, "image/jpeg")},
                headers={**api.auth, "Idempotency-Key": "same-key"},
            )

        responses = await asyncio.gather(*(one() for _ in range(20)))
    assert Counter(r.status_code for r in responses) == {202: 20}, [r.text for r in responses if r.status_code != 202]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    after = await snapshot(api)
    assert (after.jobs, after.ledger) == (before.jobs + 1, before.ledger + 1)
    assert after.stored == before.stored | {f"uploads/{ids.pop()}.jpg"}  # the losers' photos were deleted
    assert not after.temp_files
    assert await balance(api, event_id=api.event_id) == 9 == await ledger_sum(api, event_id=api.event_id)
