"""The outbox: messages are written in the transaction of the change they announce, or not at all.

Direct tests of `outbox.publish` (who hears what, nothing without a listener, rollback writes nothing) and of the
three owners that call it: `jobs/outcomes.py` (job.completed / job.failed), `notify/alerts.py` (credits.low) and
`payments/purchases.py` (purchase.approved, through the Mercado Pago simulator and the served app). SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from photobot.bus import Bus
from photobot.db import Database
from photobot.db.models import Event, JobState, WebhookDelivery, WebhookEndpoint, WebhookMessage
from photobot.jobs import outcomes
from photobot.notify import check_credit_alerts
from photobot.outbound import outbox
from photobot.settings import Settings
from photobot.signing import generate_webhook_secret
from tests.support.payments import open_shop
from tests.support.seed import make_event, make_job
from tests.support.webhooks import Receiver


async def endpoint(db: Database, *, types: list[str] | None = None, **values: Any) -> int:
    async with db.session() as session:
        row = WebhookEndpoint(url="https://hooks.example.com/in", secret=generate_webhook_secret(),
                              types=types or list(outbox.EVENT_TYPES), **values)  # fmt: skip
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def rows(db: Database) -> tuple[list[WebhookMessage], list[WebhookDelivery]]:
    async with db.session() as session:
        messages = list((await session.execute(sa.select(WebhookMessage))).scalars())
        deliveries = list((await session.execute(sa.select(WebhookDelivery).order_by(WebhookDelivery.id))).scalars())  # type: ignore[arg-type]
        return messages, deliveries


async def test_publish_reaches_the_endpoints_that_hear_it(database: Database) -> None:
    gala, other = await make_event(database), await make_event(database, name="other")
    everything = await endpoint(database)
    gala_only = await endpoint(database, event_id=gala.id)
    await endpoint(database, event_id=other.id)
    await endpoint(database, types=["credits.low"])
    await endpoint(database, active=False)
    async with database.session() as session:
        message_id = await outbox.publish(session, "job.completed", {"job_id": "j1"}, event_id=gala.id)
        user_message = await outbox.publish(session, "job.failed", {"job_id": "j2"}, user_id=None)
    messages, deliveries = await rows(database)
    assert message_id is not None and message_id.startswith("msg_")
    by_message = {m.id: m for m in messages}
    assert by_message[message_id].type == "job.completed" and by_message[message_id].data == {"job_id": "j1"}
    assert [d.endpoint_id for d in deliveries if d.message_id == message_id] == [everything, gala_only]
    # a message with no event (a B2C user's job) reaches the endpoints without an event filter only
    assert [d.endpoint_id for d in deliveries if d.message_id == user_message] == [everything]
    assert {d.state for d in deliveries} == {"pending"} and all(d.next_attempt_at for d in deliveries)


async def test_nothing_is_written_when_nobody_listens(database: Database) -> None:
    await endpoint(database, types=["purchase.approved"])
    async with database.session() as session:
        assert await outbox.publish(session, "job.completed", {}) is None
    assert await rows(database) == ([], [])


async def test_unknown_types_are_a_bug(database: Database) -> None:
    async with database.session() as session:
        with pytest.raises(ValueError, match="unknown webhook message type"):
            await outbox.publish(session, "job.exploded", {})


async def test_a_rolled_back_change_sends_nothing(database: Database) -> None:
    await endpoint(database)
    with pytest.raises(RuntimeError):
        async with database.session() as session:
            await outbox.publish(session, "job.completed", {"job_id": "j1"})
            raise RuntimeError("the state change failed after the message was written")
    assert await rows(database) == ([], [])


async def test_job_outcomes_publish_in_their_transaction(
    plain_db: Database, make_settings: Callable[..., Settings]
) -> None:
    database = plain_db
    settings = make_settings(public_base_url="https://booth.example.com")
    event = await make_event(database)
    await endpoint(database)
    done = await make_job(database, event, guest_id="g-1", cost=0)
    lost = await make_job(database, event, state=JobState.waiting, cost=0)
    rolled_back = await make_job(database, event, cost=0)
    bus = Bus()
    async with database.session() as session:
        assert await outcomes.complete(session, bus, settings, done.id, result_key="results/x.png",
                                       content_type="image/png")  # fmt: skip
        assert await outcomes.fail(session, bus, settings, lost.id, "timeout", "The photo was not ready in time.")
    with pytest.raises(RuntimeError):
        async with database.session() as session:
            await outcomes.complete(session, bus, settings, rolled_back.id, result_key="results/y.png",
                                    content_type="image/png")  # fmt: skip
            raise RuntimeError("crash before the commit")
    messages, deliveries = await rows(database)
    by_type = {m.type: m for m in messages}
    assert sorted(by_type) == ["job.completed", "job.failed"] and len(deliveries) == 2
    completed = by_type["job.completed"].data
    assert completed == {
        "job_id": done.id, "event_id": event.id, "guest_id": "g-1", "style": "pb_a",
        "page_url": f"https://booth.example.com/p/{done.public_id}", "completed_at": completed["completed_at"],
        "result_url": None,  # signed by the sender at each attempt
    }  # fmt: skip
    failed = by_type["job.failed"].data
    assert failed["job_id"] == lost.id
    assert failed["error"] == {"code": "timeout", "message": "The photo was not ready in time."}
    assert "result_url" not in failed
    # a second caller loses the conditional transition and writes no second message
    async with database.session() as session:
        again = await outcomes.complete(session, bus, settings, done.id, result_key="results/x.png",
                                        content_type="image/png")  # fmt: skip
        assert again is None
        assert await outcomes.fail(session, bus, settings, lost.id, "timeout", "again") is None
    assert len((await rows(database))[0]) == 2
    assert bus.webhook_event.is_set()  # the commit woke this process's webhook senders


async def test_credits_low_once_per_threshold(plain_db: Database) -> None:
    database = plain_db
    event = await make_event(database, credits=5, granted_total=10)
    await endpoint(database, types=["credits.low"])
    async with database.session() as session:
        assert await check_credit_alerts(session, await session.get(Event, event.id)) == [50]  # type: ignore[arg-type]
    async with database.session() as session:
        assert await check_credit_alerts(session, await session.get(Event, event.id)) == []  # type: ignore[arg-type]
        await session.execute(sa.update(Event).where(Event.id == event.id).values(credits=0))  # type: ignore[arg-type]
        assert await check_credit_alerts(session, await session.get(Event, event.id)) == [25, 0]  # type: ignore[arg-type]
    messages, _ = await rows(database)
    data = sorted((m.data for m in messages), key=lambda d: -d["threshold"])
    assert data == [
        {"event_id": event.id, "balance": 5, "granted_total": 10, "threshold": 50},
        {"event_id": event.id, "balance": 0, "granted_total": 10, "threshold": 25},
        {"event_id": event.id, "balance": 0, "granted_total": 10, "threshold": 0},
    ]
    assert {m.type for m in messages} == {"credits.low"} and {m.event_id for m in messages} == {event.id}


async def test_purchase_approved_is_published_once(
    database: Database, make_settings: Callable[..., Settings], receiver: Receiver
) -> None:
    """Through the real flow: checkout at the Mercado Pago simulator, signed notifications (sent twice) to the
    served app, the payment read back and granted once; the worker sends the message to a real receiver."""
    async for shop in open_shop(database, make_settings, run_dispatcher=True, webhook_retry_schedule="0,0.2"):
        body = {"url": receiver.hook_url, "types": ["purchase.approved"]}
        r = await shop.client.post("/v1/admin/webhooks", json=body, headers=shop.auth(shop.admin_token))
        assert r.status_code == 201, r.text
        receiver.secrets.append(r.json()["secret"])
        purchase = await shop.buy()
        payment = await shop.sim_pay(purchase["id"])
        await shop.wait_status(purchase["id"], "approved")
        await shop.sim_update(payment["id"], "approved")  # Mercado Pago notifies again: nothing new is granted
        await shop.settle_notifications(2)
        [message] = await receiver.wait_for(1)
        assert message.verified and message.json["type"] == "purchase.approved"
        data = message.json["data"]
        assert data == {
            "purchase_id": purchase["id"], "user_id": shop.user_id, "pack_id": shop.pack_id, "credits": 10,
            "price": "9.90", "currency": "BRL", "payment_id": str(payment["id"]), "balance": 10,
            "approved_at": data["approved_at"],
        }  # fmt: skip
        messages, _ = await rows(database)
        assert len(messages) == 1
