"""A worker SIGKILLed after the job's completion committed, before the message was sent (or while it was being
sent), loses nothing: a new worker delivers it, with the same `webhook-id`.

The web app (intake, callbacks, admin API) runs in the test without a worker; `photobot worker` runs as a child
process on the same database and storage. The receiver holds the first request open, so the first worker cannot
finish a send before it is killed; the test kills it the moment the job is `completed` in the database, or once
the receiver holds the request. A second
worker takes the delivery over (a pending delivery at once; one that was being sent once its lease expires) and the
receiver, now answering 204, gets the message. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import JobState, WebhookDelivery
from tests.support.stack import StackFactory
from tests.support.webhooks import Receiver
from tests.support.workers import worker_process

pytestmark = pytest.mark.timeout(240)


@pytest.mark.parametrize("moment", ["at_commit", "mid_send"])
async def test_worker_killed_between_commit_and_send_still_delivers(
    database: Database, stack: StackFactory, receiver: Receiver, tmp_path: Path, moment: str
) -> None:
    """`at_commit`: killed the moment the job is completed (before the send, or during it: the race decides);
    `mid_send`: killed once the receiver holds the request (the message left, no answer was recorded)."""
    receiver.script = ["hang"]  # the first request is never answered
    settings = {"webhook_retry_schedule": "0,0.2,0.2", "webhook_timeout_s": 3, "lease_s": 5, "poll_interval_s": 0.1}
    async with stack(database, run_dispatcher=False, **settings) as env:
        r = await env.client.post("/v1/admin/webhooks", json={"url": receiver.hook_url, "types": ["job.completed"]},
                                  headers=env.admin)  # fmt: skip
        assert r.status_code == 201, r.text
        receiver.secrets.append(r.json()["secret"])
        job_id = await env.submit()

        async with worker_process(env.settings, tmp_path / "first.log") as first:
            await first.ready()
            deadline = time.monotonic() + 60
            while (await env.job(job_id)).state != JobState.completed:  # the outbox row is committed with it
                assert time.monotonic() < deadline, "the first worker never completed the job"
                await asyncio.sleep(0.005)
            if moment == "mid_send":
                await receiver.wait_for(1)
            await first.kill9()
        async with env.db.session() as session:
            [delivery] = (await session.execute(sa.select(WebhookDelivery))).scalars().all()
        assert delivery.state in ("pending", "sending") and delivery.delivered_at is None
        killed_mid_send = delivery.state == "sending"
        assert len(receiver.received) == (1 if killed_mid_send else 0)
        assert killed_mid_send or moment == "at_commit"
        receiver.script = []  # the receiver is healthy again: 204 from now on

        async with worker_process(env.settings, tmp_path / "second.log") as second:
            await second.ready()
            messages = await receiver.wait_for(len(receiver.received) + 1, timeout=60)
            deadline = time.monotonic() + 20
            while True:  # until the second worker recorded the 204
                async with env.db.session() as session:
                    done = await session.get(WebhookDelivery, delivery.id, populate_existing=True)
                if done is not None and done.state != "sending":
                    break
                assert time.monotonic() < deadline, "the second worker never recorded the delivery"
                await asyncio.sleep(0.05)
        assert len({m.id for m in messages}) == 1 and messages[-1].id == delivery.message_id
        assert all(m.verified for m in messages)
        assert messages[-1].json["data"]["job_id"] == job_id
        assert done.state == "delivered" and done.last_status == 204
        assert (await env.job(job_id)).state == JobState.completed
        print(f"killed {'mid-send' if killed_mid_send else 'before the send'}; {len(messages)} request(s) received")
