"""Organiser alerts when an event's balance crosses 50 %, 25 % and 0 % of its granted credits: once each."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import CreditAlert, Event
from photobot.notify import Notifier, check_credit_alerts, reset_credit_alerts
from photobot.notify.alerts import crossed_thresholds
from tests.support.seed import make_event


@pytest.mark.parametrize(
    ("credits", "granted", "expected"),
    [(20, 20, []), (11, 20, []), (10, 20, [50]), (5, 20, [50, 25]), (1, 20, [50, 25]), (0, 20, [50, 25, 0]),
     (0, 0, []), (3, 7, [50]), (1, 4, [50, 25])],
)  # fmt: skip
def test_crossed_thresholds(credits, granted, expected):
    assert crossed_thresholds(credits, granted) == expected


async def _settle_one(db: Database, event_id: int) -> list[int]:
    """A settlement as the credit code does it: a conditional decrement, then the threshold check."""
    async with db.session() as session:
        result = await session.execute(
            sa.update(Event).where(Event.id == event_id, Event.credits >= 1).values(credits=Event.credits - 1)
        )
        assert result.rowcount == 1
        event = await session.get(Event, event_id)
        return await check_credit_alerts(session, event)


async def _alerts(db: Database, event_id: int) -> list[CreditAlert]:
    async with db.session() as session:
        query = sa.select(CreditAlert).where(CreditAlert.event_id == event_id).order_by(CreditAlert.threshold)
        return list((await session.execute(query)).scalars())


async def test_alerts_fire_once_per_threshold_under_concurrent_settlements(notify_db, notify_settings, http_capture):
    url = f"json://127.0.0.1:{http_capture.port}/organiser"
    event = await make_event(notify_db, title="Gala Night", credits=20, granted_total=20, alert_urls=[url])

    created = await asyncio.gather(*(_settle_one(notify_db, event.id) for _ in range(20)))

    assert sorted(t for batch in created for t in batch) == [0, 25, 50]
    assert [a.threshold for a in await _alerts(notify_db, event.id)] == [0, 25, 50]
    # checking again (a settle retried, a second worker) adds nothing
    async with notify_db.session() as session:
        assert await check_credit_alerts(session, await session.get(Event, event.id)) == []

    outcomes: list[tuple[str, str]] = []
    notifier = Notifier(notify_db, notify_settings(), None, lambda *o: outcomes.append(o))
    await asyncio.gather(notifier.run_due(), notifier.run_due(), notifier.run_due())
    await notifier.run_due()

    assert len(http_capture.requests) == 3
    titles = sorted(r.json()["title"] for r in http_capture.requests)
    assert titles == ["Gala Night: credits below 25 %", "Gala Night: credits below 50 %", "Gala Night: credits used up"]
    assert outcomes == [("alert", "sent")] * 3
    assert {a.state for a in await _alerts(notify_db, event.id)} == {"sent"}


async def test_a_top_up_re_arms_the_thresholds_it_clears(notify_sqlite):
    event = await make_event(notify_sqlite, credits=10, granted_total=20)
    async with notify_sqlite.session() as session:
        assert await check_credit_alerts(session, event) == [50]
    async with notify_sqlite.session() as session:
        await session.execute(sa.update(Event).where(Event.id == event.id).values(credits=30, granted_total=40))
        assert await reset_credit_alerts(session, event) == 1
    assert await _alerts(notify_sqlite, event.id) == []


async def test_alert_without_organiser_urls_is_skipped_and_failures_retry(notify_sqlite, notify_settings, http_capture):
    silent = await make_event(notify_sqlite, credits=0, granted_total=5)
    async with notify_sqlite.session() as session:
        assert await check_credit_alerts(session, silent) == [50, 25, 0]
    http_capture.status = 500
    loud = await make_event(
        notify_sqlite, credits=0, granted_total=5, alert_urls=[f"json://127.0.0.1:{http_capture.port}/o"]
    )
    async with notify_sqlite.session() as session:
        await check_credit_alerts(session, loud)

    notifier = Notifier(notify_sqlite, notify_settings(), None, max_attempts=2, base_backoff_s=0.01)
    await notifier.run_due()
    assert {a.state for a in await _alerts(notify_sqlite, silent.id)} == {"skipped"}
    assert {(a.state, a.attempts) for a in await _alerts(notify_sqlite, loud.id)} == {("pending", 1)}
    await asyncio.sleep(0.05)
    await notifier.run_due()
    alerts = await _alerts(notify_sqlite, loud.id)
    assert {(a.state, a.attempts) for a in alerts} == {("failed", 2)}
    assert all("500" in (a.last_error or "") or "Internal Server Error" in (a.last_error or "") for a in alerts)
