"""The queue mechanics: leases, crashed workers, competing workers, backoff."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from photobot.db.models import Notification, utcnow
from photobot.notify import Notifier
from photobot.notify.delivery import SendResult
from photobot.notify.queue import RetryPolicy
from tests.support.seed import finish_job, make_event, make_job


class RecordingSender:
    """Stands in for Apprise where the point is the queue, not the channel."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.sent: list[tuple[str, str]] = []
        self.delay_s = delay_s
        self.during_send = None

    async def send(self, urls, *, title, body, body_format="text", attachments=()):
        if self.during_send is not None:
            await self.during_send()
        await asyncio.sleep(self.delay_s)
        self.sent.extend((url, body) for url in urls)
        return SendResult(True)


async def _states(db):
    async with db.session() as session:
        rows = (await session.execute(sa.select(Notification).order_by(Notification.id))).scalars().all()
        return [(r.state, r.attempts) for r in rows]


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(max_attempts=5, base_backoff_s=10, max_backoff_s=60)
    delays = [policy.delay_s(n) for n in (1, 2, 3, 4, 5)]
    for delay, base in zip(delays, (10, 20, 40, 60, 60), strict=True):
        assert base <= delay <= base * 1.2
    assert policy.outcome(SendResult(False, "x"), 4) == "retry"
    assert policy.outcome(SendResult(False, "x"), 5) == "failed"
    assert policy.outcome(SendResult(False, "x", permanent=True), 1) == "failed"


async def test_competing_workers_send_each_row_once(notify_db, notify_settings):
    settings = notify_settings()
    event = await make_event(notify_db, notify_urls=["json://kiosk.invalid/a", "json://kiosk.invalid/b"])
    for _ in range(5):
        job = await make_job(notify_db, event)
        await finish_job(notify_db, job.id, settings)
    sender = RecordingSender(delay_s=0.05)
    workers = [Notifier(notify_db, settings, None, sender=sender) for _ in range(4)]

    handled = await asyncio.gather(*(w.run_due(limit=4) for w in workers for _ in range(2)))

    assert sum(handled) == 10
    assert len(sender.sent) == 10
    assert await _states(notify_db) == [("sent", 1)] * 10


async def test_a_crashed_workers_row_is_retaken_after_its_lease(notify_db, notify_settings):
    settings = notify_settings()
    event = await make_event(notify_db, notify_urls=["json://kiosk.invalid/a"])
    job = await make_job(notify_db, event)
    await finish_job(notify_db, job.id, settings)
    sender = RecordingSender()
    notifier = Notifier(notify_db, settings, None, sender=sender)

    # another worker holds a live lease: not ours to take
    async with notify_db.session() as session:
        await session.execute(
            sa.update(Notification).values(state="sending", attempts=1, lease_until=utcnow() + timedelta(minutes=5))
        )
    assert await notifier.run_due() == 0
    # ... until that worker's lease runs out (it crashed)
    async with notify_db.session() as session:
        await session.execute(sa.update(Notification).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert await notifier.run_due() == 1
    assert len(sender.sent) == 1
    assert await _states(notify_db) == [("sent", 2)]


async def test_a_resend_during_a_send_is_not_overwritten(notify_sqlite, notify_settings):
    settings = notify_settings()
    event = await make_event(notify_sqlite, notify_urls=["json://kiosk.invalid/a"])
    job = await make_job(notify_sqlite, event)
    await finish_job(notify_sqlite, job.id, settings)
    sender = RecordingSender()
    notifier = Notifier(notify_sqlite, settings, None, sender=sender)

    async def operator_resends() -> None:
        sender.during_send = None
        await notifier.resend(job.id, "push:0")

    sender.during_send = operator_resends
    await notifier.run_due()
    assert await _states(notify_sqlite) == [("pending", 0)]  # the resend stands
    await notifier.run_due()
    assert len(sender.sent) == 2
    assert await _states(notify_sqlite) == [("sent", 1)]
