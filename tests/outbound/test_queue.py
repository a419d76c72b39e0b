"""The delivery queue: leases, the retry schedule with jitter, a lost lease, and the failing streak that disables an
endpoint once. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage, utcnow
from photobot.outbound import outbox
from photobot.outbound.queue import Attempt, claim, next_delay, purge, record
from photobot.signing import generate_webhook_secret

SCHEDULE = [0.0, 10.0, 100.0]
OK = Attempt(200, None, 5)
FAIL = Attempt(500, "HTTP 500", 5)


async def messages(db: Database, count: int, *, endpoints: int = 1) -> list[int]:
    async with db.session() as session:
        ids = []
        for _ in range(endpoints):
            row = WebhookEndpoint(url="https://hooks.example.com/in", secret=generate_webhook_secret(),
                                  types=list(outbox.EVENT_TYPES))  # fmt: skip
            session.add(row)
            await session.flush()
            assert row.id is not None
            ids.append(row.id)
    for i in range(count):
        async with db.session() as session:
            await outbox.publish(session, "job.completed", {"job_id": f"j{i}"})
    return ids


async def endpoint(db: Database, endpoint_id: int) -> WebhookEndpoint:
    async with db.session() as session:
        row = await session.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        return row


def test_next_delay_follows_the_schedule_with_jitter() -> None:
    delays = [next_delay(SCHEDULE, 1) for _ in range(200)]
    assert all(d is not None and 9.0 <= d <= 11.0 for d in delays)
    assert len(set(delays)) > 100  # jittered, not a fixed step
    assert next_delay(SCHEDULE, 2) is not None and 90.0 <= next_delay(SCHEDULE, 2) <= 110.0  # type: ignore[operator]
    assert next_delay(SCHEDULE, 3) is None  # three attempts made: the schedule is used up
    assert next_delay([0.0], 0) == 0.0


async def test_concurrent_claims_never_share_a_delivery(database: Database) -> None:
    await messages(database, 20)
    batches = await asyncio.gather(*(claim(database, 10, 60) for _ in range(4)))
    claimed = [c.id for batch in batches for c in batch]
    assert len(claimed) == 20 and len(set(claimed)) == 20
    assert await claim(database, 10, 60) == []  # all leased


async def test_a_dead_workers_lease_expires_and_the_delivery_is_retaken(database: Database) -> None:
    await messages(database, 1)
    [first] = await claim(database, 10, 0.05)
    await asyncio.sleep(0.1)
    [again] = await claim(database, 10, 60)
    assert again.id == first.id and again.message_id == first.message_id and again.attempts == 2
    assert await record(database, first, OK, schedule=SCHEDULE, disable_after_s=3600) is None  # lease lost
    recorded = await record(database, again, OK, schedule=SCHEDULE, disable_after_s=3600)
    assert recorded is not None and recorded.outcome == "delivered"
    async with database.session() as session:
        assert (await session.execute(sa.select(sa.func.count()).select_from(WebhookAttempt))).scalar_one() == 1


async def test_retry_then_failed_when_the_schedule_is_used_up(database: Database) -> None:
    await messages(database, 1)
    outcomes = []
    for _ in SCHEDULE:
        async with database.session() as session:  # due now, whatever the schedule said
            await session.execute(sa.update(WebhookDelivery).values(next_attempt_at=utcnow()))
        [c] = await claim(database, 10, 60)
        recorded = await record(database, c, FAIL, schedule=SCHEDULE, disable_after_s=3600)
        assert recorded is not None
        outcomes.append(recorded.outcome)
        async with database.session() as session:
            row = (await session.execute(sa.select(WebhookDelivery))).scalar_one()
        if recorded.outcome == "retry":
            wait = (row.next_attempt_at - utcnow()).total_seconds()  # type: ignore[operator]
            assert SCHEDULE[c.attempts] * 0.85 <= wait <= SCHEDULE[c.attempts] * 1.1
    assert outcomes == ["retry", "retry", "failed"]
    assert (row.state, row.last_status, row.last_error, row.next_attempt_at) == ("failed", 500, "HTTP 500", None)
    assert await claim(database, 10, 60) == []


async def test_the_failing_streak_disables_an_endpoint_once(database: Database) -> None:
    [endpoint_id] = await messages(database, 3)
    claims = await claim(database, 10, 60)
    first = await record(database, claims[0], FAIL, schedule=SCHEDULE, disable_after_s=60)
    assert first is not None and not first.endpoint_disabled
    started = (await endpoint(database, endpoint_id)).failing_since
    assert started is not None
    # a success ends the streak
    await record(database, claims[1], OK, schedule=SCHEDULE, disable_after_s=60)
    assert (await endpoint(database, endpoint_id)).failing_since is None
    # failing for longer than the limit: the next failure disables it, and only once
    async with database.session() as session:
        await session.execute(sa.update(WebhookEndpoint).values(failing_since=utcnow() - timedelta(seconds=61)))
    disabling = await record(database, claims[2], FAIL, schedule=SCHEDULE, disable_after_s=60)
    assert disabling is not None and disabling.endpoint_disabled
    row = await endpoint(database, endpoint_id)
    assert (row.active, row.alert_pending) == (False, True)
    assert row.disabled_reason == "every attempt failed for more than 60 seconds"
    async with database.session() as session:
        await session.execute(sa.update(WebhookDelivery).values(next_attempt_at=utcnow()))
    later = (await claim(database, 10, 60))[0]
    again = await record(database, later, FAIL, schedule=SCHEDULE, disable_after_s=60)
    assert again is not None and not again.endpoint_disabled


async def test_purge_deletes_finished_old_messages_only(database: Database) -> None:
    await messages(database, 3)
    claims = await claim(database, 10, 60)
    await record(database, claims[0], OK, schedule=SCHEDULE, disable_after_s=3600)  # delivered
    await record(database, claims[1], Attempt(500, "x", 1), schedule=[0.0], disable_after_s=3600)  # failed
    # claims[2] is still being sent
    assert await purge(database, utcnow() - timedelta(days=1)) == 0  # nothing is old enough
    assert await purge(database, utcnow() + timedelta(seconds=1)) == 2
    async with database.session() as session:
        left = (await session.execute(sa.select(WebhookDelivery))).scalars().all()
        assert [d.id for d in left] == [claims[2].id]
        assert (await session.execute(sa.select(sa.func.count()).select_from(WebhookAttempt))).scalar_one() == 0
        assert (await session.execute(sa.select(sa.func.count()).select_from(WebhookMessage))).scalar_one() == 1


@pytest.mark.parametrize(
    ("seconds", "text"), [(432000, "5 days"), (86400, "1 day"), (7200, "2 hours"), (90, "90 seconds")]
)
def test_disable_reason_wording(seconds: int, text: str) -> None:
    from photobot.outbound.queue import _duration

    assert _duration(seconds) == text
