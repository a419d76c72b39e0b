"""The admin API over real HTTP: auth on every route, each operation, and the credit ledger invariant through
retry and fail-and-refund (the `database` fixture audits it after each test)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from photobot.admin import routes as ADMIN_ROUTES
from photobot.cli.main import cli
from photobot.db import Database
from photobot.db.models import Event, JobTransition, utcnow
from tests.support.smtp import SMTPServer
from tests.support.stack import Stack, StackFactory, fast_sim

PARAMS = {
    "event_id": "1", "user_id": "1", "key_id": "1", "token_id": "1", "job_id": "nope", "style_id": "pb_a",
    "pack_id": "1", "endpoint_id": "1", "message_id": "nope",
}  # fmt: skip


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PARAMS[m.group(1)], path)


async def test_every_admin_route_needs_an_admin_token(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, run_dispatcher=False) as env:
        for route in ADMIN_ROUTES:
            for method in route.methods or ():
                if method == "HEAD":
                    continue
                url = _concrete(route.path)
                none = await env.client.request(method, url, json={})
                assert none.status_code == 401, (method, url, none.text)
                assert none.headers["content-type"].startswith("application/problem+json")
                for token in (env.kiosk_token, env.app_token):
                    refused = await env.client.request(
                        method, url, json={}, headers={"Authorization": f"Bearer {token}"}
                    )
                    assert refused.status_code == 403, (method, url, refused.text)


async def test_events_users_styles_keys_tokens(database: Database, ops_app: StackFactory) -> None:
    alert = "tgram://123456789:AAE-very-secret-bot-token/987654"
    key_secret = "kie-admin-secret-0123456789"
    async with ops_app(database, run_dispatcher=False) as env:
        c, h = env.client, env.admin
        # events
        created = await c.post(
            "/v1/admin/events",
            json={"name": "Gala", "credits": 7, "title": "The Gala", "primary_color": "#112233", "alert_urls": [alert]},
            headers=h,
        )
        assert created.status_code == 201, created.text
        event = created.json()
        assert event["credits"] == 7 and event["title"] == "The Gala"
        assert event["alert_urls"] == ["tgram://…"] and "secret" not in created.text
        eid = event["id"]
        listed = await c.get("/v1/admin/events", headers=h)
        assert {e["id"] for e in listed.json()} >= {env.event_id, eid}
        patched = await c.patch(
            f"/v1/admin/events/{eid}", json={"footer_text": "Thanks!", "language": "es", "notify_on_failure": True},
            headers=h,
        )  # fmt: skip
        assert patched.status_code == 200 and patched.json()["footer_text"] == "Thanks!"
        assert (await c.get(f"/v1/admin/events/{eid}", headers=h)).json()["language"] == "es"
        kept = await c.patch(f"/v1/admin/events/{eid}", json={"language": None, "alert_urls": None}, headers=h)
        assert kept.status_code == 200 and kept.json()["language"] == "es" and kept.json()["alert_urls"]
        bad_url = await c.patch(f"/v1/admin/events/{eid}", json={"alert_urls": ["not a url"]}, headers=h)
        assert bad_url.status_code == 422 and "alert_urls" in bad_url.json()["detail"]
        async with env.db.session() as session:
            stored = await session.get(Event, eid)
            assert stored is not None and stored.alert_urls == [alert]  # stored whole, shown masked
        topped = await c.post(f"/v1/admin/events/{eid}/credits", json={"add": 5}, headers=h)
        assert topped.status_code == 200 and topped.json()["credits"] == 12
        assert (await c.post(f"/v1/admin/events/{eid}/credits", json={"add": 0}, headers=h)).status_code == 422
        assert (await c.post("/v1/admin/events", content=b"{nope", headers=h)).status_code == 400
        assert (await c.post("/v1/admin/events", json={"name": "x", "bogus": 1}, headers=h)).status_code == 422
        assert (await c.get("/v1/admin/events/9999", headers=h)).status_code == 404
        stats = (await c.get(f"/v1/admin/events/{eid}/stats", headers=h)).json()
        assert stats["submitted"] == 0 and stats["credits_balance"] == 12 and stats["credits_granted"] == 12
        assert len((await c.get("/v1/admin/stats", headers=h)).json()) >= 2
        # users
        user = await c.post("/v1/admin/users", json={"external_id": "u-42", "credits": 2}, headers=h)
        assert user.status_code == 201
        uid = user.json()["id"]
        assert (await c.post(f"/v1/admin/users/{uid}/credits", json={"add": 3}, headers=h)).json()["credits"] == 5
        assert any(u["external_id"] == "u-42" for u in (await c.get("/v1/admin/users", headers=h)).json())
        # styles
        styles = (await c.get("/v1/admin/styles", headers=h)).json()
        assert any(s["id"] == "pb_a" for s in styles)
        put = await c.put(
            "/v1/admin/styles", json={"styles": [{"id": "ops_x", "name": "Ops", "prompt": "make it ops"}]}, headers=h
        )
        assert put.status_code == 200, put.text
        assert (await c.get("/v1/admin/styles/ops_x", headers=h)).json()["prompt"] == "make it ops"
        assert (await c.get("/v1/admin/styles/none", headers=h)).status_code == 404
        # provider keys: masked everywhere
        added = await c.post("/v1/admin/keys", json={"provider": "kie", "secret": key_secret, "label": "k2"}, headers=h)
        assert added.status_code == 201, added.text
        assert key_secret not in added.text and added.json()["secret"] == "…" + key_secret[-4:]
        kid = added.json()["id"]
        assert (
            await c.post("/v1/admin/keys", json={"provider": "kie", "secret": key_secret}, headers=h)
        ).status_code == 422
        keys = await c.get("/v1/admin/keys", headers=h)
        assert key_secret not in keys.text and any(k["id"] == kid and k["state"] == "usable" for k in keys.json())
        disabled = await c.post(f"/v1/admin/keys/{kid}/disable", json={"reason": "rotated"}, headers=h)
        assert disabled.json()["state"] == "disabled" and disabled.json()["disabled_reason"] == "rotated"
        assert (await c.post(f"/v1/admin/keys/{kid}/enable", headers=h)).json()["state"] == "usable"
        assert (await c.post("/v1/admin/keys/9999/disable", headers=h)).status_code == 404
        # tokens: shown once, work, can be revoked
        made = await c.post("/v1/admin/tokens", json={"scope": "event", "event_id": eid, "label": "booth 2"}, headers=h)
        assert made.status_code == 201, made.text
        token, tid = made.json()["token"], made.json()["id"]
        listing = await c.get("/v1/admin/tokens", headers=h)
        assert token not in listing.text and "token_hash" not in listing.text
        assert (await c.get("/v1/styles", headers={"Authorization": f"Bearer {token}"})).status_code == 200
        assert (await c.delete(f"/v1/admin/tokens/{tid}", headers=h)).json()["revoked_at"]
        assert (await c.get("/v1/styles", headers={"Authorization": f"Bearer {token}"})).status_code == 401
        assert (await c.post("/v1/admin/tokens", json={"scope": "event"}, headers=h)).status_code == 422


async def _transitions(env: Stack, job_id: str) -> list[tuple[str | None, str, str | None]]:
    async with env.db.session() as session:
        rows = await session.execute(
            sa.select(JobTransition.from_state, JobTransition.to_state, JobTransition.note)
            .where(JobTransition.job_id == job_id)
            .order_by(JobTransition.id)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def test_retry_a_failed_job_makes_a_new_job(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, fast_sim(failure_rate=1.0), credits=2) as env:
        c, h = env.client, env.admin
        failed = await env.submit()
        await env.wait_for(failed, "failed")
        assert await env.ledger(failed) == ["reserve", "release"]
        assert (await c.post(f"/v1/admin/jobs/{failed}/fail", headers=h)).status_code == 409  # already final

        env.sim.config.failure_rate = 0.0
        retried = await c.post(f"/v1/admin/jobs/{failed}/retry", headers=h)
        assert retried.status_code == 201, retried.text
        new_id = retried.json()["job"]["id"]
        assert retried.json()["retry_of"] == failed and new_id != failed
        await env.wait_for(new_id, "completed")
        old, new = await env.job(failed), await env.job(new_id)
        assert old.state == "failed" and new.state == "completed"  # the failed job was never reopened
        assert (new.style_id, new.prompt, new.event_id, new.cost) == (old.style_id, old.prompt, old.event_id, old.cost)
        assert new.input_key == f"inputs/{new_id}.{old.input_key.rsplit('.', 1)[-1]}"
        assert await env.ledger(failed) == ["reserve", "release"]
        assert await env.ledger(new_id) == ["reserve", "settle"]
        assert (None, "pending", f"retry of {failed}") in await _transitions(env, new_id)
        assert ("failed", "failed", f"retried as {new_id}") in await _transitions(env, failed)

        shown = (await c.get(f"/v1/admin/jobs/{failed}", headers=h)).json()
        assert [r["reason"] for r in shown["ledger"]] == ["reserve", "release"]
        assert any(t["note"] == f"retried as {new_id}" for t in shown["transitions"])
        assert (await c.post(f"/v1/admin/jobs/{new_id}/retry", headers=h)).status_code == 409  # not failed

        # the account is now empty (2 credits: one released and re-spent, one spent): a retry needs a credit
        assert (await c.post(f"/v1/admin/jobs/{failed}/retry", headers=h)).status_code == 201
        again = (await c.get(f"/v1/admin/events/{env.event_id}", headers=h)).json()
        assert again["credits"] == 0
        refused = await c.post(f"/v1/admin/jobs/{failed}/retry", headers=h)
        assert refused.status_code == 402 and refused.json()["code"] == "no_credits"
        assert (await c.post("/v1/admin/jobs/nope/retry", headers=h)).status_code == 404
        # let the second retry finish so the audit sees it settled
        jobs = (await c.get("/v1/admin/jobs", params={"event_id": env.event_id}, headers=h)).json()
        for job in jobs:
            if job["status"] not in ("completed", "failed"):
                await env.wait_for(job["id"], "completed")


async def test_fail_and_refund_a_stuck_job(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, run_dispatcher=False) as env:
        c, h = env.client, env.admin
        stuck = await env.submit(email="guest@example.com")
        before = (await c.get(f"/v1/admin/events/{env.event_id}", headers=h)).json()["credits"]
        failed = await c.post(f"/v1/admin/jobs/{stuck}/fail", json={"reason": "provider lost it"}, headers=h)
        assert failed.status_code == 200, failed.text
        body = failed.json()
        assert body["state"] == "failed" and body["error_code"] == "operator_failed"
        assert body["error_message"] == "provider lost it"
        assert body["email"] != "guest@example.com" and "***" in body["email"]
        assert await env.ledger(stuck) == ["reserve", "release"]
        after = (await c.get(f"/v1/admin/events/{env.event_id}", headers=h)).json()["credits"]
        assert after == before + 1
        again = await c.post(f"/v1/admin/jobs/{stuck}/fail", headers=h)
        assert again.status_code == 409 and again.json()["code"] == "wrong_state"
        assert await env.ledger(stuck) == ["reserve", "release"]  # released exactly once

        stats = (await c.get(f"/v1/admin/events/{env.event_id}/stats", headers=h)).json()
        assert stats["submitted"] == 1 and stats["failed"] == 1 and stats["credits_refunded"] == 1
        assert stats["credits_spent"] == 0


async def test_list_show_and_resend(database: Database, ops_app: StackFactory, smtp_server: SMTPServer) -> None:
    async with ops_app(database, smtp_url=smtp_server.url) as env:
        c, h = env.client, env.admin
        done = await env.submit(email="guest@example.com")
        await env.wait_for(done, "completed")
        for _ in range(200):
            if smtp_server.messages:
                break
            await asyncio.sleep(0.05)
        assert len(smtp_server.messages) == 1

        listed = await c.get("/v1/admin/jobs", params={"event_id": env.event_id, "state": "completed"}, headers=h)
        assert [j["id"] for j in listed.json()] == [done]
        since = (utcnow() + timedelta(hours=1)).isoformat()
        assert (await c.get("/v1/admin/jobs", params={"since": since}, headers=h)).json() == []
        assert (await c.get("/v1/admin/jobs", params={"state": "bogus"}, headers=h)).status_code == 422
        assert (await c.get("/v1/admin/jobs", params={"limit": "0"}, headers=h)).status_code == 422
        shown = (await c.get(f"/v1/admin/jobs/{done}", headers=h)).json()
        assert [t["to_state"] for t in shown["transitions"]][-1] == "completed"
        assert [n["channel"] for n in shown["notifications"]] == ["email"]
        assert "guest@example.com" not in str(shown)

        resent = await c.post(f"/v1/admin/jobs/{done}/resend", json={"channel": "email"}, headers=h)
        assert resent.status_code == 202, resent.text
        assert resent.json()["state"] == "pending" and "guest@example.com" not in resent.text
        for _ in range(200):
            if len(smtp_server.messages) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(smtp_server.messages) == 2
        missing = await c.post(f"/v1/admin/jobs/{done}/resend", json={"channel": "whatsapp"}, headers=h)
        assert missing.status_code == 404


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_cli_refund_and_retry_use_the_same_services(
    database: Database, ops_app: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ops_app(database, run_dispatcher=False) as env:
        stuck = await env.submit()
        settings = env.settings
        for name, value in {
            "PHOTOBOT_DATABASE_URL": database.url,
            "PHOTOBOT_VAR_DIR": str(settings.var_dir),
            "PHOTOBOT_SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
            "PHOTOBOT_STORAGE_URL": settings.resolved_storage_url,
            "PHOTOBOT_ENV": "test",
        }.items():
            monkeypatch.setenv(name, value)
        runner = CliRunner()

        def run(*args: str) -> tuple[int, str, str]:
            result = runner.invoke(cli, list(args), catch_exceptions=False)
            return result.exit_code, result.stdout, result.stderr

        code, out, _ = await asyncio.to_thread(run, "jobs", "refund", stuck, "--json")
        assert code == 0 and '"state": "failed"' in out
        code, _, err = await asyncio.to_thread(run, "jobs", "refund", stuck)
        assert code == 1 and "already failed" in err
        code, out, _ = await asyncio.to_thread(run, "jobs", "retry", stuck, "--json")
        assert code == 0 and f'"retry_of": "{stuck}"' in out
        code, out, _ = await asyncio.to_thread(run, "events", "stats", str(env.event_id), "--json")
        assert code == 0 and '"submitted": 2' in out and '"credits_refunded": 1' in out
        assert await env.ledger(stuck) == ["reserve", "release"]
        # leave no job in flight half-paid: refund the retry as well
        jobs = (await env.client.get("/v1/admin/jobs", params={"state": "pending"}, headers=env.admin)).json()
        for job in jobs:
            await env.client.post(f"/v1/admin/jobs/{job['id']}/fail", headers=env.admin)
