"""`outcomes.complete` (one statement on PostgreSQL: move, history, settlement, with the event and the listening
endpoints read back) against racing enders, on both databases: exactly one caller wins, and the credit, the
history and the job row show that one move only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import sqlalchemy as sa
from sqlmodel import col

from photobot.bus import Bus
from photobot.db import Database
from photobot.db.models import CreditLedger, Event, Job, JobState, JobTransition
from photobot.jobs import credits, outcomes
from photobot.settings import Settings
from tests.support.seed import make_event, make_job, make_style


async def test_one_of_many_racing_enders_wins_and_settles_once(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    settings, bus = make_settings(), Bus()
    await make_style(database)
    event = await make_event(database)
    job = await make_job(database, event, cost=1, lease_owner="w1")
    async with database.session() as session:
        await credits.grant(session, event_id=event.id, amount=5)
        reserved = await session.get(Job, job.id)
        assert reserved is not None
        await credits.reserve(session, reserved)

    async def complete() -> Job | None:
        async with database.session() as session:
            return await outcomes.complete(
                session, bus, settings, job.id, result_key=f"results/{job.id}.png", content_type="image/png"
            )

    async def fail() -> Job | None:
        async with database.session() as session:
            return await outcomes.fail(session, bus, settings, job.id, "operator", "stopped")

    results = await asyncio.gather(*(complete() for _ in range(6)), fail(), fail())
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    won = winners[0]
    async with database.session() as session:
        stored = await session.get(Job, job.id)
        ledger = (await session.execute(
            sa.select(col(CreditLedger.reason)).where(col(CreditLedger.job_id) == job.id).order_by(col(CreditLedger.id))
        )).scalars().all()  # fmt: skip
        moves = sa.select(col(JobTransition.from_state), col(JobTransition.to_state))
        history = (await session.execute(moves.where(col(JobTransition.job_id) == job.id))).all()
        account = await session.get(Event, event.id, populate_existing=True)
        balance = account.credits if account is not None else None
    assert stored is not None and stored.state == won.state
    if won.state == JobState.completed:
        assert ledger == ["reserve", "settle"] and balance == 4
        assert history == [("finishing", "completed")]
        assert stored.result_key == f"results/{job.id}.png" and stored.result_content_type == "image/png"
        assert stored.completed_at is not None and stored.lease_owner is None and stored.error_code is None
        assert won.result_key == stored.result_key and won.completed_at == stored.completed_at
    else:
        assert ledger == ["reserve", "release"] and balance == 5
        assert history == [("finishing", "failed")]


async def test_completing_a_job_in_another_state_changes_nothing(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    settings, bus = make_settings(), Bus()
    await make_style(database)
    event = await make_event(database)
    job = await make_job(database, event, cost=0, state=JobState.waiting)
    async with database.session() as session:
        done = await outcomes.complete(
            session, bus, settings, job.id, result_key="results/x.png", content_type="image/png"
        )
    assert done is None
    async with database.session() as session:
        stored = await session.get(Job, job.id)
        history = (await session.execute(sa.select(JobTransition).where(col(JobTransition.job_id) == job.id))).all()
    assert stored is not None and stored.state == JobState.waiting and stored.result_key is None and history == []
