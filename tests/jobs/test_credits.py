"""Credits on SQLite and PostgreSQL: grant, reserve, settle, release, the audit, and races on the balance."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from photobot.db import Database
from photobot.db.audit import audit
from photobot.db.models import CreditLedger, Event, Job, JobState, User, utcnow
from photobot.jobs import credits
from photobot.jobs.credits import NoCredits


async def _event(db: Database, credits_: int = 0) -> int:
    async with db.session() as session:
        event = Event(name="Party")
        session.add(event)
        await session.flush()
        assert event.id is not None
        if credits_:
            await credits.grant(session, event_id=event.id, amount=credits_, note="initial")
        return event.id


def _job(*, event_id: int | None = None, user_id: int | None = None, cost: int = 1) -> Job:
    return Job(
        event_id=event_id,
        user_id=user_id,
        style_id="pb_a",
        cost=cost,
        provider="kie",
        model="nano-banana-pro",
        prompt="p",
        input_key="inputs/x.jpg",
        deadline_at=utcnow() + timedelta(minutes=5),
    )


async def _balance(db: Database, model: type[Event] | type[User], account_id: int) -> int:
    async with db.session() as session:
        return (await session.execute(sa.select(model.credits).where(model.id == account_id))).scalar_one()


async def _reserve(db: Database, job: Job) -> int:
    async with db.session() as session:
        session.add(job)
        await session.flush()
        return await credits.reserve(session, job)


async def _finish(db: Database, job: Job, state: JobState) -> None:
    async with db.session() as session:
        await session.execute(sa.update(Job).where(Job.id == job.id).values(state=state, result_key="results/x.jpg"))
        if state is JobState.completed:
            await credits.settle(session, job)
        else:
            await credits.release(session, job)


async def test_grant_reserve_settle_release(database: Database) -> None:
    event_id = await _event(database)
    async with database.session() as session:
        assert await credits.grant(session, event_id=event_id, amount=5, note="top-up") == 5
        assert await credits.grant(session, event_id=event_id, amount=2) == 7
        with pytest.raises(ValueError):
            await credits.grant(session, event_id=event_id, amount=0)
        with pytest.raises(LookupError):
            await credits.grant(session, event_id=999, amount=1)
    async with database.session() as session:
        event = await session.get(Event, event_id)
        assert event is not None
        assert (event.credits, event.granted_total) == (7, 7)

    done, failed = _job(event_id=event_id, cost=2), _job(event_id=event_id, cost=3)
    assert await _reserve(database, done) == 5
    assert await _reserve(database, failed) == 2
    assert await audit(database) == []  # in flight: reserved, neither settled nor released

    await _finish(database, done, JobState.completed)
    await _finish(database, failed, JobState.failed)
    assert await _balance(database, Event, event_id) == 5  # 7 - 2 spent; the 3 came back
    assert await audit(database) == []

    async with database.session() as session:
        rows = (
            await session.execute(
                sa.select(CreditLedger.reason, CreditLedger.delta, CreditLedger.job_id).order_by(CreditLedger.id)
            )
        ).all()
    assert [(r, d) for r, d, _ in rows] == [
        ("grant", 5),
        ("grant", 2),
        ("reserve", -2),
        ("reserve", -3),
        ("settle", 0),
        ("release", 3),
    ]
    assert sum(d for _, d, _ in rows) == 5


async def test_user_credits_and_free_styles(database: Database) -> None:
    async with database.session() as session:
        user = User(external_id="app-user-1")
        session.add(user)
        await session.flush()
        assert user.id is not None
        user_id = user.id
        await credits.grant(session, user_id=user_id, amount=1)
    paid = _job(user_id=user_id)
    await _reserve(database, paid)
    free = _job(user_id=user_id, cost=0)
    assert await _reserve(database, free) == -1  # free styles never touch the balance
    assert await _balance(database, User, user_id) == 0
    with pytest.raises(NoCredits):
        await _reserve(database, _job(user_id=user_id))
    await _finish(database, paid, JobState.completed)
    await _finish(database, free, JobState.completed)
    assert await audit(database) == []


async def test_reserve_refuses_beyond_the_balance(database: Database) -> None:
    event_id = await _event(database, credits_=2)
    with pytest.raises(NoCredits):
        await _reserve(database, _job(event_id=event_id, cost=3))
    assert await _balance(database, Event, event_id) == 2  # unchanged, and no job or ledger row survived
    async with database.session() as session:
        assert (await session.execute(sa.select(sa.func.count()).select_from(Job))).scalar_one() == 0
        reasons = (await session.execute(sa.select(CreditLedger.reason))).scalars().all()
    assert reasons == ["grant"]

    job = _job(event_id=event_id, cost=2)
    assert await _reserve(database, job) == 0
    with pytest.raises(NoCredits):
        await _reserve(database, _job(event_id=event_id))
    assert await _balance(database, Event, event_id) == 0
    await _finish(database, job, JobState.failed)
    assert await _balance(database, Event, event_id) == 2


async def test_concurrent_reserves_never_overspend(database: Database) -> None:
    event_id = await _event(database, credits_=10)

    async def attempt() -> bool:
        try:
            await _reserve(database, _job(event_id=event_id))
        except NoCredits:
            return False
        return True

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    assert results.count(True) == 10
    assert await _balance(database, Event, event_id) == 0
    async with database.session() as session:
        reserves = (
            await session.execute(
                sa.select(sa.func.count()).select_from(CreditLedger).where(CreditLedger.reason == "reserve")
            )
        ).scalar_one()
        jobs = (await session.execute(sa.select(Job))).scalars().all()
    assert reserves == 10
    assert len(jobs) == 10
    assert await audit(database) == []
    for job in jobs:
        await _finish(database, job, JobState.completed)


async def test_a_second_settle_violates_the_unique_index(database: Database) -> None:
    event_id = await _event(database, credits_=3)
    job = _job(event_id=event_id)
    await _reserve(database, job)
    await _finish(database, job, JobState.completed)
    with pytest.raises(IntegrityError):
        async with database.session() as session:
            await credits.settle(session, job)
    with pytest.raises(IntegrityError):
        async with database.session() as session:
            await credits.reserve(session, job)  # a job reserves once, too
    assert await _balance(database, Event, event_id) == 2
    assert await audit(database) == []


async def test_audit_reports_broken_invariants(database: Database) -> None:
    event_id = await _event(database, credits_=3)
    job = _job(event_id=event_id)
    await _reserve(database, job)
    async with database.session() as session:
        # a balance changed behind the ledger's back, and a job completed without settling
        await session.execute(sa.update(Event).where(Event.id == event_id).values(credits=Event.credits + 5))
        await session.execute(sa.update(Job).where(Job.id == job.id).values(state=JobState.completed))
    problems = await audit(database)
    assert any("balance 7 != ledger 2" in p for p in problems)
    assert any("completed with settle=0 release=0" in p for p in problems)
    assert any("completed without a result" in p for p in problems)
    # repair, so the fixture's own audit passes
    async with database.session() as session:
        await session.execute(sa.update(Event).where(Event.id == event_id).values(credits=Event.credits - 5))
        await session.execute(sa.update(Job).where(Job.id == job.id).values(result_key="results/x.jpg"))
        await credits.settle(session, job)
    assert await audit(database) == []
