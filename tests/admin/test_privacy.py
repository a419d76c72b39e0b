"""Guest privacy through the admin API, over real HTTP with the job pipeline (simulator, dispatcher, notifier) on
SQLite and PostgreSQL, with local and S3 storage (moto): forget leaves no file of the guest in storage and no
contact detail in the database, keeps the anonymised jobs and their ledger rows (the `database` fixture audits the
ledger after each test), cancels unsent messages, and turns the guest's pages and photo links into 410s; export
returns what is stored about a guest; purge deletes every photo of an event; approve and hide refuse what they
cannot do."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import CreditLedger, Job, JobTransition, Notification, WebhookEvent, WebhookMessage
from photobot.links import gallery_url
from tests.support.api import stored_keys
from tests.support.images import striped_png
from tests.support.servers import free_port
from tests.support.stack import Stack, StackFactory

EMAIL, PHONE = "ana@example.com", "+628123456789"
DEAD_SMTP = "mailto://127.0.0.1:{port}?from=booth@photobot.test&mode=insecure"  # nothing listens: mail stays unsent


@pytest.fixture(params=["local", "s3"])
def storage_url(request: pytest.FixtureRequest) -> str:
    return "" if request.param == "local" else str(request.getfixturevalue("s3_storage_url"))


def _keys_of(keys: frozenset[str], job_ids: list[str]) -> set[str]:
    return {key for key in keys if any(job_id in key for job_id in job_ids)}


async def _stored(env: Stack) -> frozenset[str]:
    return await asyncio.to_thread(stored_keys, env)


async def _dump(db: Database) -> str:
    """Every row of every table that could hold a guest's contact details, as one text."""
    async with db.session() as session:
        rows = []
        for model in (Job, Notification, WebhookEvent, JobTransition, CreditLedger, WebhookMessage):
            rows += [r.model_dump(mode="json") for r in (await session.execute(sa.select(model))).scalars()]
    return json.dumps(rows).lower()


async def _until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _post(env: Stack, path: str, body: dict[str, Any] | None = None) -> Any:
    response = await env.client.post(path, json=body or {}, headers=env.admin)
    assert response.status_code == 200, response.text
    return response.json()


async def test_forget_erases_the_guests_photos_and_contact_and_keeps_the_ledger(
    database: Database, ops_app: StackFactory, storage_url: str
) -> None:
    async with ops_app(
        database, smtp_url=DEAD_SMTP.format(port=free_port()), storage_url=storage_url, reconcile_after_s=600
    ) as env:
        await env.set_event(notify_on_failure=True)
        hook = {"url": "https://hooks.example.com/in", "event_id": env.event_id}  # outbound messages name guest ids
        assert (await env.client.post("/v1/admin/webhooks", json=hook, headers=env.admin)).status_code == 201
        ana = await env.submit(email=EMAIL, phone=PHONE, guest_id="g-1")
        ana_again = await env.submit(email="ANA@Example.com")  # the same guest, spelled differently
        bob = await env.submit(email="bob@example.com", guest_id="g-2")
        for job_id in (ana, ana_again, bob):
            await env.wait_for(job_id, "completed")
        gallery = gallery_url(env.base_url, env.settings.secret_keys(), env.event_id).removeprefix(env.base_url)
        for job_id in (ana, bob):  # thumbnails exist too
            thumb = await env.client.get(gallery.replace("/gallery?", f"/thumbs/{job_id}.jpg?"))
            assert thumb.status_code == 200
        env.sim.config.drop_rate = 1.0  # the next job waits for a callback that never comes
        waiting = await env.submit(email=EMAIL)
        await env.wait_state(waiting, ("waiting",))

        async def mail_attempted() -> bool:
            rows = [n for j in (ana, ana_again) for n in await env.notifications(j)]
            return len(rows) == 2 and all(n.attempts >= 1 for n in rows)

        await _until(mail_attempted)
        ana_view = await env.view(ana)
        ana_job = await env.job(ana)
        page, result_url = f"/p/{ana_job.public_id}", ana_view["result_url"]
        assert (await env.client.get(page)).status_code == 200
        before = await _stored(env)
        assert _keys_of(before, [ana]) >= {ana_job.input_key, f"results/{ana}.png", f"thumbs/{ana}.jpg"}

        # export first: everything stored about the guest (by phone: only the first job has it)
        exported = await _post(env, f"/v1/admin/events/{env.event_id}/export", {"phone": "+62 812 3456 789"})
        assert [j["job"]["id"] for j in exported["jobs"]] == [ana]
        first = exported["jobs"][0]
        assert first["job"]["email"] == EMAIL and first["job"]["phone"] == PHONE and first["job"]["guest_id"] == "g-1"
        assert [r["reason"] for r in first["ledger"]] == ["reserve", "settle"]
        assert [n["target"] for n in first["notifications"]] == [EMAIL]  # the guest's own data, unmasked
        assert {p["kind"] for p in first["photos"]} == {"input", "result"}
        assert "request_hash" not in first["job"]
        assert [(m["type"], m["data"]["guest_id"]) for m in first["webhook_messages"]] == [("job.completed", "g-1")]
        by_email = await _post(env, f"/v1/admin/events/{env.event_id}/export", {"email": "ANA@example.COM"})
        assert sorted(j["job"]["id"] for j in by_email["jobs"]) == sorted([ana, ana_again, waiting])

        report = await _post(env, f"/v1/admin/events/{env.event_id}/forget", {"email": "Ana@Example.com"})
        assert report["jobs"] == 3 and sorted(report["job_ids"]) == sorted([ana, ana_again, waiting])
        assert report["jobs_failed"] == 1  # the waiting one: failed and refunded
        assert report["notifications_cancelled"] >= 3  # two unsent photo mails and the failure apology
        assert report["webhook_messages_scrubbed"] == 1  # the guest id in the first job's job.completed
        forgotten = [ana, ana_again, waiting]
        assert report["files_deleted"] == len(_keys_of(before, forgotten)) >= 6

        # storage: nothing of the guest left; the other guest's photos untouched
        after = await _stored(env)
        assert _keys_of(after, forgotten) == set()
        assert _keys_of(after, [bob]) == _keys_of(before, [bob]) and _keys_of(after, [bob])

        # database: no contact detail anywhere; the anonymised jobs and their ledger rows stay
        dump = await _dump(env.db)
        for secret in ("ana@example.com", "628123456789", '"g-1"'):
            assert secret not in dump
        assert "bob@example.com" in dump
        for job_id in forgotten:
            job = await env.job(job_id)
            assert (job.email, job.phone, job.guest_id, job.request_hash) == (None, None, None, None)
            assert job.forgotten_at is not None and job.purged_at is not None
            assert all(
                n.target == "" and n.state in ("cancelled", "sent", "failed") for n in await env.notifications(job_id)
            )
        assert await env.ledger(ana) == ["reserve", "settle"]
        gone = await env.job(waiting)
        assert (gone.state, gone.error_code) == ("failed", "guest_forgotten")
        assert await env.ledger(waiting) == ["reserve", "release"]
        assert {n.state for n in await env.notifications(ana)} == {"cancelled"}

        # the guest's pages and links answer 410; the job itself is still there for the operator
        html = await env.client.get(page)
        assert html.status_code == 410 and "deleted" in html.text and EMAIL not in html.text
        for suffix in (".json", "/events", "/qr.png"):
            assert (await env.client.get(page + suffix)).status_code == 410, suffix
        media = await env.client.get(result_url)
        if storage_url:
            assert media.status_code in (403, 404)  # S3 answers for its presigned links: the object is gone
        else:
            assert media.status_code == 410 and media.json()["code"] == "gone"
        assert (await env.view(ana))["result_url"] is None
        resend = await env.client.post(f"/v1/admin/jobs/{ana}/resend", json={"channel": "email"}, headers=env.admin)
        assert resend.status_code == 404 and "erased" in resend.json()["detail"]  # nobody to send to any more

        # forgetting again finds nobody; exporting finds nothing
        again = await _post(env, f"/v1/admin/events/{env.event_id}/forget", {"email": EMAIL})
        assert (again["jobs"], again["files_deleted"], again["job_ids"]) == (0, 0, [])
        assert (await _post(env, f"/v1/admin/events/{env.event_id}/export", {"email": EMAIL}))["jobs"] == []
        env.sim.config.drop_rate = 0.0


async def test_forget_and_export_refuse_bad_requests(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, run_dispatcher=False) as env:
        for path in ("forget", "export"):
            url = f"/v1/admin/events/{env.event_id}/{path}"
            for body in ({}, {"email": EMAIL, "phone": PHONE}, {"phone": "12"}, {"email": "nobody"}, {"x": 1}):
                response = await env.client.post(url, json=body, headers=env.admin)
                assert response.status_code == 422, (path, body, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
            missing = await env.client.post(f"/v1/admin/events/999999/{path}", json={"email": EMAIL}, headers=env.admin)
            assert missing.status_code == 404


async def test_purge_deletes_every_photo_of_the_event(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, reconcile_after_s=600) as env:
        done = [await env.submit(email=f"guest{i}@example.com") for i in range(2)]
        for job_id in done:
            await env.wait_for(job_id, "completed")
        env.sim.config.drop_rate = 1.0
        running = await env.submit()
        await env.wait_state(running, ("waiting",))
        jobs = [*done, running]
        assert _keys_of(await _stored(env), jobs)

        report = await _post(env, f"/v1/admin/events/{env.event_id}/purge")
        assert (report["jobs"], report["jobs_failed"]) == (3, 1) and report["files_deleted"] >= 5
        assert _keys_of(await _stored(env), jobs) == set()
        for job_id in done:
            job = await env.job(job_id)
            assert job.purged_at is not None and job.email  # contact details stay: forget removes those
            assert (await env.client.get(f"/p/{job.public_id}")).status_code == 410
        assert (await env.job(running)).error_code == "event_purged"
        assert await env.ledger(running) == ["reserve", "release"]
        again = await _post(env, f"/v1/admin/events/{env.event_id}/purge")
        assert (again["jobs_failed"], again["files_deleted"]) == (0, 0)
        assert (await env.client.post("/v1/admin/events/999999/purge", headers=env.admin)).status_code == 404
        env.sim.config.drop_rate = 0.0


async def test_approve_and_hide_refuse_what_they_cannot_do(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, run_dispatcher=False) as env:
        pending = await env.submit()
        user_job = await env.client.post(
            "/v1/jobs", data={"style": "pb_a", "user_id": str(env.user_id)}, headers=env.auth_as(env.app_token),
            files={"image": ("g.png", striped_png((64, 64)), "image/png")},
        )  # fmt: skip
        assert user_job.status_code == 202, user_job.text
        for action in ("approve", "hide"):
            missing = await env.client.post(f"/v1/admin/jobs/{'0' * 32}/{action}", headers=env.admin)
            assert missing.status_code == 404
            wrong = await env.client.post(f"/v1/admin/jobs/{user_job.json()['id']}/{action}", headers=env.admin)
            assert wrong.status_code == 409 and wrong.json()["code"] == "wrong_state"
        not_done = await env.client.post(f"/v1/admin/jobs/{pending}/approve", headers=env.admin)
        assert not_done.status_code == 409 and "completed" in not_done.json()["detail"]
        hidden = await env.client.post(f"/v1/admin/jobs/{pending}/hide", headers=env.admin)  # hidden before it is done
        assert hidden.status_code == 200 and hidden.json()["hidden_at"] is not None
