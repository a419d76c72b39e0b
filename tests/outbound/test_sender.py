"""Signed outbound webhooks end to end: the served app with its worker, the kie simulator and a real receiver that
verifies every message with the `standardwebhooks` library, on SQLite and PostgreSQL.

The retry schedule is shortened (`0,0.2,0.2,…`) so retries happen within a test; everything else is production
code over real sockets.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from photobot.outbound.sender import USER_AGENT
from tests.support.metrics import Samples
from tests.support.stack import Stack, StackFactory, fast_sim
from tests.support.webhooks import Receiver

FAST = {"webhook_retry_schedule": "0,0.2,0.2,0.2,0.2", "webhook_timeout_s": 2}


def delta(before: Samples, after: Samples, **labels: str) -> float:
    """How many webhook attempts with these labels were counted between two scrapes (counters are per process)."""
    name = "photobot_webhook_deliveries_total"
    return after.get_value(name, **labels) - before.get_value(name, **labels)


async def add_endpoint(env: Stack, receiver: Receiver, **body: Any) -> dict[str, Any]:
    """`POST /v1/admin/webhooks` for the receiver; the receiver learns the secret (shown only in this answer)."""
    r = await env.client.post("/v1/admin/webhooks", json={"url": receiver.hook_url, **body}, headers=env.admin)
    assert r.status_code == 201, r.text
    view = r.json()
    receiver.secrets.append(view["secret"])
    return dict(view)


async def deliveries(env: Stack, endpoint_id: int) -> list[dict[str, Any]]:
    r = await env.client.get(f"/v1/admin/webhooks/{endpoint_id}/deliveries", headers=env.admin)
    assert r.status_code == 200, r.text
    return list(r.json())


async def wait_delivery(env: Stack, endpoint_id: int, state: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        views = await deliveries(env, endpoint_id)
        if views and views[0]["state"] == state:
            return views[0]
        assert time.monotonic() < deadline, f"delivery still {views and views[0]['state']}, wanted {state}"
        await asyncio.sleep(0.05)


async def test_job_completed_is_signed_and_verifiable(
    database: Database, stack: StackFactory, receiver: Receiver
) -> None:
    async with stack(database, **FAST) as env:
        before = await env.scrape()
        endpoint = await add_endpoint(env, receiver, types=["job.completed", "job.failed"])
        assert endpoint["secret"].startswith("whsec_") and endpoint["active"] is True
        job_id = await env.submit(guest_id="guest-7")
        view = await env.wait_for(job_id, "completed")
        [message] = await receiver.wait_for(1)
        assert message.verified, "the standardwebhooks library must verify what we send"
        assert message.headers["webhook-id"].startswith("msg_")
        assert abs(int(message.headers["webhook-timestamp"]) - time.time()) < 30
        assert message.headers["content-type"] == "application/json"
        assert message.headers["user-agent"] == USER_AGENT
        body = message.json
        assert set(body) == {"type", "timestamp", "data"} and body["type"] == "job.completed"
        assert body["timestamp"].endswith("Z")
        data = body["data"]
        assert data["job_id"] == job_id and data["event_id"] == env.event_id and data["guest_id"] == "guest-7"
        assert data["style"] == "pb_a" and data["page_url"] == view["page_url"]
        assert data["completed_at"].endswith("Z") and "user_id" not in data
        photo = await env.client.get(data["result_url"])  # signed and expiring, like the API's own result_url
        assert photo.status_code == 200 and photo.headers["content-type"].startswith("image/")
        done = await wait_delivery(env, endpoint["id"], "delivered")
        assert done["message_id"] == message.id and [h["status"] for h in done["history"]] == [204]
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 1  # delivered once: nothing more is sent
        assert delta(before, await env.scrape(), type="job.completed", outcome="delivered") == 1


async def test_job_failed_carries_the_error_code(database: Database, stack: StackFactory, receiver: Receiver) -> None:
    async with stack(database, fast_sim(failure_rate=1.0), **FAST) as env:
        await add_endpoint(env, receiver, types=["job.failed"])
        job_id = await env.submit()
        await env.wait_for(job_id, "failed")
        [message] = await receiver.wait_for(1)
        assert message.verified and message.json["type"] == "job.failed"
        data = message.json["data"]
        assert data["job_id"] == job_id and data["error"]["code"] == "provider_generation_failed"
        assert "result_url" not in data


async def test_500_three_times_then_200_is_delivered_exactly_once_more(
    database: Database, stack: StackFactory, receiver: Receiver
) -> None:
    receiver.script = [500, 500, 500]  # then 204
    async with stack(database, **FAST) as env:
        before = await env.scrape()
        endpoint = await add_endpoint(env, receiver, types=["job.completed"])
        await env.wait_for(await env.submit(), "completed")
        done = await wait_delivery(env, endpoint["id"], "delivered")
        await asyncio.sleep(1.0)  # the schedule has attempts left: none may be used after the success
        assert len(receiver.received) == 4
        assert len({m.id for m in receiver.received}) == 1, "webhook-id is stable across retries"
        assert all(m.verified for m in receiver.received)
        assert [h["status"] for h in done["history"]] == [500, 500, 500, 204]
        assert done["history"][0]["error"] == "HTTP 500: nope" and done["last_error"] is None
        gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
        assert all(gap >= 0.17 for gap in gaps), gaps  # 0.2 s apart, give or take the 10 % jitter
        after = await env.scrape()
        assert delta(before, after, type="job.completed", outcome="retry") == 3
        assert delta(before, after, type="job.completed", outcome="delivered") == 1


async def test_a_schedule_used_up_ends_failed_and_replay_sends_again(
    database: Database, stack: StackFactory, receiver: Receiver
) -> None:
    receiver.script = [503, 503, 503]
    async with stack(database, webhook_retry_schedule="0,0.1,0.1", webhook_timeout_s=2) as env:
        before = await env.scrape()
        endpoint = await add_endpoint(env, receiver, types=["job.completed"])
        await env.wait_for(await env.submit(), "completed")
        failed = await wait_delivery(env, endpoint["id"], "failed")
        assert failed["attempts"] == 3 and failed["last_status"] == 503 and failed["next_attempt_at"] is None
        r = await env.client.post(f"/v1/admin/webhooks/messages/{failed['message_id']}/replay", headers=env.admin)
        assert r.status_code == 200, r.text
        assert [v["state"] for v in r.json()] == ["pending"]
        done = await wait_delivery(env, endpoint["id"], "delivered")
        assert [h["status"] for h in done["history"]] == [503, 503, 503, 204]
        assert [m.id for m in receiver.received] == [failed["message_id"]] * 4
        assert delta(before, await env.scrape(), type="job.completed", outcome="failed") == 1


async def test_redirects_are_failures_and_never_followed(
    database: Database, stack: StackFactory, receiver: Receiver
) -> None:
    receiver.script = [307]
    async with stack(database, **FAST) as env:
        endpoint = await add_endpoint(env, receiver, types=["job.completed"])
        await env.wait_for(await env.submit(), "completed")
        done = await wait_delivery(env, endpoint["id"], "delivered")
        assert [h["status"] for h in done["history"]] == [307, 204]
        assert len(receiver.received) == 2  # the retry, not a followed redirect


async def test_a_slow_receiver_times_out_and_is_retried(
    database: Database, stack: StackFactory, receiver: Receiver
) -> None:
    receiver.script = ["hang"]
    async with stack(database, webhook_retry_schedule="0,0.1", webhook_timeout_s=0.5) as env:
        endpoint = await add_endpoint(env, receiver, types=["job.completed"])
        await env.wait_for(await env.submit(), "completed")
        done = await wait_delivery(env, endpoint["id"], "delivered")
        first = done["history"][0]
        assert first["status"] is None and first["error"].startswith("fetch_timeout")
        assert 400 <= first["duration_ms"] < 2000
        assert [h["status"] for h in done["history"]][1:] == [204]


async def test_an_event_endpoint_hears_its_event_only(
    database: Database, stack: StackFactory, receiver: Receiver
) -> None:
    async with stack(database, **FAST) as env:
        other = await env.new_event("Other party")
        await add_endpoint(env, receiver, event_id=other, types=["job.completed"])
        await env.wait_for(await env.submit(), "completed")  # the seeded event's job
        await asyncio.sleep(0.6)
        assert receiver.received == []
        async with env.db.session() as session:
            assert (await session.execute(sa.select(sa.func.count()).select_from(WebhookDelivery))).scalar_one() == 0


async def test_endpoint_failing_too_long_is_disabled_and_the_operator_alerted(
    database: Database, stack: StackFactory, receiver: Receiver
) -> None:
    receiver.script = [500] * 10
    async with stack(
        database, webhook_retry_schedule="0,0.2,0.2,0.2", webhook_disable_after_s=60,
        operator_alert_urls=receiver.alert_url,
    ) as env:  # fmt: skip
        before = await env.scrape()
        endpoint = await add_endpoint(env, receiver, types=["job.completed"])
        # the endpoint has been failing for two minutes already (longer than the 60 s limit)
        async with env.db.session() as session:
            await session.execute(
                sa.update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint["id"])  # type: ignore[arg-type]
                .values(failing_since=utcnow() - timedelta(minutes=2))
            )
        await env.wait_for(await env.submit(), "completed")
        [alert] = await receiver.wait_alerts(1)
        assert f"endpoint {endpoint['id']} disabled" in alert["title"]
        assert receiver.url.split("//")[1] in alert["message"] and "webhooks enable" in alert["message"]
        listed = (await env.client.get("/v1/admin/webhooks", headers=env.admin)).json()
        assert listed[0]["active"] is False and "failed for more than" in listed[0]["disabled_reason"]
        assert "secret" not in listed[0]
        await asyncio.sleep(0.8)
        assert len(receiver.received) == 1  # disabled after the first failure: the rest are skipped, not sent
        views = await deliveries(env, endpoint["id"])
        assert views[0]["state"] == "failed" and views[0]["last_error"] == "the endpoint is disabled"
        async with env.db.session() as session:
            attempts = (await session.execute(sa.select(sa.func.count()).select_from(WebhookAttempt))).scalar_one()
            alert_pending = (await session.get(WebhookEndpoint, endpoint["id"])).alert_pending  # type: ignore[union-attr]
        assert attempts == 1 and alert_pending is False
        after = await env.scrape()
        disabled = "photobot_webhook_endpoints_disabled_total"
        assert after.get_value(disabled) - before.get_value(disabled) == 1
        assert after.get_value("photobot_webhook_endpoints", state="disabled") == 1
        # enabled again, the missed message is replayed and arrives
        receiver.script = []
        assert (await env.client.post(f"/v1/admin/webhooks/{endpoint['id']}/enable", headers=env.admin)).json()[
            "active"
        ]
        r = await env.client.post(f"/v1/admin/webhooks/messages/{views[0]['message_id']}/replay", headers=env.admin)
        assert r.status_code == 200
        await wait_delivery(env, endpoint["id"], "delivered")


async def test_result_url_is_signed_at_each_attempt(
    database: Database, stack: StackFactory, receiver: Receiver
) -> None:
    receiver.script = [500]
    async with stack(database, webhook_retry_schedule="0,1.2", webhook_timeout_s=2) as env:
        await add_endpoint(env, receiver, types=["job.completed"])
        await env.wait_for(await env.submit(), "completed")
        first, second = await receiver.wait_for(2)
        assert first.id == second.id and first.verified and second.verified
        url_1, url_2 = first.json["data"]["result_url"], second.json["data"]["result_url"]
        assert url_1 != url_2  # a later expiry: a late retry still carries a working link
        async with httpx.AsyncClient() as client:
            assert (await client.get(url_2)).status_code == 200
