"""The event's guest rules at intake, over real HTTP on SQLite and PostgreSQL: consent (422 `consent_required`,
nothing changes; the job records when consent was given) and the per-guest photo cap (409 `guest_limit_reached`,
no credit reserved; counted by guest id, e-mail or phone over accepted jobs that did not fail)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from photobot.db.models import utcnow
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


async def _add_credits(api: Stack, event_id: int, amount: int) -> None:
    response = await api.client.post(f"/v1/admin/events/{event_id}/credits", json={"add": amount}, headers=api.admin)
    assert response.status_code == 200, response.text


async def _patch_event(api: Stack, event_id: int, **fields: object) -> dict[str, object]:
    response = await api.client.patch(f"/v1/admin/events/{event_id}", json=fields, headers=api.admin)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_consent_required_refuses_without_consent_and_records_when_given(api: Stack) -> None:
    # not required: consent is optional and recorded only when given
    plain = assert_accepted(await submit_multipart(api))
    assert (await job_row(api, plain["id"])).consent_at is None

    event = await _patch_event(api, api.event_id, consent_required=True, consent_text="I agree to the AI magic.")
    assert event["consent_required"] is True and event["consent_text"] == "I agree to the AI magic."
    async with unchanged(api):
        for response in (
            await submit_multipart(api),
            await submit_multipart(api, consent="false"),
            await submit_multipart(api, consent=""),
            await submit_json(api),
            await submit_json(api, consent=False),
            await submit_json(api, consent=None),
        ):
            body = assert_problem(response, 422, "consent_required")
            assert "consent" in body["detail"]
        assert_problem(await submit_json(api, consent="maybe"), 422, "validation_error")

    before = utcnow()
    for response in (await submit_multipart(api, consent="true"), await submit_multipart(api, consent="on"),
                     await submit_json(api, consent=True)):  # fmt: skip
        job = await job_row(api, assert_accepted(response)["id"])
        assert job.consent_at is not None and before - timedelta(seconds=1) <= job.consent_at <= utcnow()

    # an app token charging a user (B2C) has no event and no consent rule; charging the event, it has
    assert_accepted(await submit_json(api, token=api.app_token, user_id=api.user_id))
    assert_problem(await submit_json(api, token=api.app_token, event_id=api.event_id), 422, "consent_required")

    # switched off again, guests need not consent
    await _patch_event(api, api.event_id, consent_required=False)
    assert_accepted(await submit_json(api))


async def test_guest_cap_counts_guest_id_email_and_phone_and_skips_failed_jobs(api: Stack) -> None:
    await _add_credits(api, api.event_id, 20)
    await _patch_event(api, api.event_id, max_photos_per_guest=2)
    other_event = await new_event(api, credits=5)
    _, other_kiosk = await new_token(api, "event", event_id=other_event)

    first = assert_accepted(await submit_multipart(api, email="ana@example.com", guest_id="42"))
    assert_accepted(await submit_multipart(api, email="ANA@example.com", guest_id="42", phone="+628123456789"))
    credits_before = await balance(api, event_id=api.event_id)
    async with unchanged(api):
        same_guest = (  # any identifier matching counts
            {"email": "ana@EXAMPLE.com"},
            {"guest_id": "42"},
            {"phone": "+62 812 3456 789", "guest_id": "42"},
            {"email": "new@example.com", "guest_id": "42"},
        )
        for fields in same_guest:
            body = assert_problem(await submit_multipart(api, **fields), 409, "guest_limit_reached")
            assert body["limit"] == 2 and "2 photos" in body["detail"]
    assert await balance(api, event_id=api.event_id) == credits_before  # no credit reserved

    # other guests, guests without any identifier, and the same guest at another event are not capped
    assert_accepted(await submit_multipart(api, email="budi@example.com"))
    for _ in range(3):
        assert_accepted(await submit_multipart(api))
    assert_accepted(await submit_multipart(api, token=other_kiosk, email="ana@example.com"))

    # a failed job does not count: failing one frees a place for the guest
    failed = await api.client.post(f"/v1/admin/jobs/{first['id']}/fail", json={}, headers=api.admin)
    assert failed.status_code == 200, failed.text
    assert_accepted(await submit_multipart(api, phone="+628123456789", email="ana@example.com"))
    assert_problem(await submit_multipart(api, phone="+628123456789"), 409, "guest_limit_reached")

    # retrying the failed job would be the guest's third photo: refused the same way, nothing reserved
    async with unchanged(api):
        retried = await api.client.post(f"/v1/admin/jobs/{first['id']}/retry", headers=api.admin)
        assert_problem(retried, 409, "guest_limit_reached")

    # lifting the cap (null) lets the guest go on
    event = await _patch_event(api, api.event_id, max_photos_per_guest=None)
    assert event["max_photos_per_guest"] is None
    assert_accepted(await submit_multipart(api, email="ana@example.com"))


async def test_concurrent_submissions_of_one_guest_never_pass_the_cap(api: Stack) -> None:
    await _add_credits(api, api.event_id, 20)
    await _patch_event(api, api.event_id, max_photos_per_guest=3)
    credits_before = await balance(api, event_id=api.event_id)
    answers = await asyncio.gather(*(submit_json(api, guest_id="guest-7") for _ in range(10)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] * 3 + [409] * 7, [a.text for a in answers]
    assert await balance(api, event_id=api.event_id) == credits_before - 3


async def test_event_settings_are_validated(api: Stack) -> None:
    for fields in (
        {"moderation": "sometimes"},
        {"max_photos_per_guest": 0},
        {"retention_days": 0},
        {"retention_days": 100_000},
        {"consent_required": "perhaps"},
        {"consent_text": "x" * 1001},
    ):
        response = await api.client.patch(f"/v1/admin/events/{api.event_id}", json=fields, headers=api.admin)
        assert_problem(response, 422, "validation_error")
    kept = await _patch_event(api, api.event_id, moderation=None, consent_required=None)  # null: leave as is
    assert kept["moderation"] == "auto" and kept["consent_required"] is False
    changed = await _patch_event(api, api.event_id, moderation="approve", retention_days=7)
    assert changed["moderation"] == "approve" and changed["retention_days"] == 7


async def test_kiosks_read_the_events_consent_rule_and_wording(api: Stack) -> None:
    answer = await api.client.get("/v1/event", headers=api.auth)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["id"] == api.event_id and body["consent_required"] is False and body["retention_days"] == 30
    assert "30 days" in body["consent_text"]  # the default wording, in the event's language
    await _patch_event(api, api.event_id, consent_required=True, language="es", retention_days=7)
    body = (await api.client.get("/v1/event", headers=api.auth)).json()
    assert (
        body["consent_required"] is True
        and body["consent_text"].startswith("Acepto")
        and "7 días" in body["consent_text"]
    )
    await _patch_event(api, api.event_id, consent_text="Yes, make me a painting.")
    assert (await api.client.get("/v1/event", headers=api.auth)).json()["consent_text"] == "Yes, make me a painting."

    app = api.auth_as(api.app_token)
    assert_problem(await api.client.get("/v1/event", headers=app), 422, "owner_required")
    named = await api.client.get("/v1/event", params={"event_id": api.event_id}, headers=app)
    assert named.status_code == 200 and named.json()["id"] == api.event_id
    assert_problem(await api.client.get("/v1/event", params={"event_id": "x"}, headers=app), 422, "validation_error")
    assert_problem(await api.client.get("/v1/event", params={"event_id": 99999}, headers=app), 404, "not_found")
    assert_problem(await api.client.get("/v1/event", params={"event_id": 2**40}, headers=app), 404, "not_found")
    other = await new_event(api)
    assert_problem(await api.client.get("/v1/event", params={"event_id": other}, headers=api.auth), 403, "forbidden")
    assert_problem(await api.client.get("/v1/event"), 401, "unauthorized")
