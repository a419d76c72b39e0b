"""Accepting a job (`jobs/accept.py`) over real HTTP: on PostgreSQL the accepting transaction is one statement
(`_ACCEPT_SQL`), and these tests line its racers up behind the event's row lock so that the race happens every run,
not when the scheduler feels like it: the last credit, the last photo of a capped guest and one Idempotency-Key
each go to exactly one request, and the losers leave nothing behind. The style cache's staleness is shown to be
harmless on both backends: a style changed or deactivated in the database (by another process, which cannot
reach this one's cache) is used as it is now."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import CreditLedger, Job, Style
from photobot.settings import Settings
from tests.support.api import (
    assert_accepted,
    assert_problem,
    balance,
    job_row,
    ledger_sum,
    new_token,
    snapshot,
    submit_multipart,
    unchanged,
)
from tests.support.stack import Stack, open_app


@asynccontextmanager
async def event_row_held(env: Stack, waiters: int) -> AsyncIterator[None]:
    """Hold the event's row lock while the block starts its requests; leave once `waiters` statements are queued
    behind it (each has taken its snapshot by then), and release it, so they all decide at once."""
    async with env.db.engine.connect() as holder:
        transaction = await holder.begin()
        await holder.execute(sa.text("SELECT 1 FROM events WHERE id = :id FOR UPDATE"), {"id": env.event_id})
        yield
        deadline = time.monotonic() + 30
        while await _lock_waiters(env) < waiters:
            assert time.monotonic() < deadline, f"fewer than {waiters} requests reached the lock"
            await asyncio.sleep(0.02)
        await transaction.rollback()


async def _lock_waiters(env: Stack) -> int:
    async with env.db.engine.connect() as probe:  # a transaction of its own: activity is read once per transaction
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        return int((await probe.execute(sa.text(query))).scalar_one())


async def _race(env: Stack, requests: list[Callable[[], Awaitable[httpx.Response]]]) -> list[httpx.Response]:
    async with event_row_held(env, len(requests)):
        tasks = [asyncio.create_task(send()) for send in requests]
    return await asyncio.gather(*tasks)


async def _patch_event(env: Stack, **fields: object) -> None:
    response = await env.client.patch(f"/v1/admin/events/{env.event_id}", json=fields, headers=env.admin)
    assert response.status_code == 200, response.text


async def test_the_last_credit_goes_to_exactly_one_of_five(
    pg_database: Database, make_settings: Callable[..., Settings]
) -> None:
    async with open_app(pg_database, make_settings, credits=1, submit_rate_limit="1000/minute") as api:
        before = await snapshot(api)
        answers = await _race(api, [lambda i=i: submit_multipart(api, guest_id=f"g{i}") for i in range(5)])
        assert Counter(a.status_code for a in answers) == {202: 1, 402: 4}, [a.text for a in answers]
        for refused in (a for a in answers if a.status_code == 402):
            assert_problem(refused, 402, "no_credits")
        winner = next(a.json()["id"] for a in answers if a.status_code == 202)
        after = await snapshot(api)
        assert (after.jobs, after.ledger, after.transitions) == (before.jobs + 1, before.ledger + 1,
                                                                 before.transitions + 1)  # fmt: skip
        assert after.stored == before.stored | {f"uploads/{winner}.jpg"} and not after.temp_files
        assert await balance(api, event_id=api.event_id) == 0 == await ledger_sum(api, event_id=api.event_id)


async def test_two_kiosks_racing_for_a_guests_last_photo_one_wins(
    pg_database: Database, make_settings: Callable[..., Settings]
) -> None:
    """Both statements take their snapshot before either job exists; the loser finds the event's row changed under
    its snapshot (the winner's decrement), runs again behind the lock and counts the winner's photo."""
    async with open_app(pg_database, make_settings, credits=10, submit_rate_limit="1000/minute") as api:
        await _patch_event(api, max_photos_per_guest=2)
        assert_accepted(await submit_multipart(api, email="ana@example.com"))
        _, second_kiosk = await new_token(api, "event", event_id=api.event_id)
        before = await snapshot(api)
        answers = await _race(api, [
            lambda: submit_multipart(api, email="ANA@example.com"),
            lambda: submit_multipart(api, token=second_kiosk, email="ana@example.com", guest_id="7"),
        ])  # fmt: skip
        assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
        body = assert_problem(next(a for a in answers if a.status_code == 409), 409, "guest_limit_reached")
        assert body["limit"] == 2
        after = await snapshot(api)
        assert (after.jobs, after.ledger) == (before.jobs + 1, before.ledger + 1)
        assert len(after.stored - before.stored) == 1 and not after.temp_files
        assert await balance(api, event_id=api.event_id) == 8 == await ledger_sum(api, event_id=api.event_id)

        # five at once for a fresh guest with a cap of 2: exactly two win, whoever gets the lock first
        answers = await _race(api, [lambda: submit_multipart(api, guest_id="budi") for _ in range(5)])
        assert Counter(a.status_code for a in answers) == {202: 2, 409: 3}, [a.text for a in answers]
        assert await balance(api, event_id=api.event_id) == 6 == await ledger_sum(api, event_id=api.event_id)


async def test_one_idempotency_key_racing_makes_one_job_and_one_charge(
    pg_database: Database, make_settings: Callable[..., Settings]
) -> None:
    """The losers' inserts meet the winner's key (ON CONFLICT DO NOTHING): nothing charged, the winner replayed."""
    async with open_app(pg_database, make_settings, credits=10, submit_rate_limit="1000/minute") as api:
        before = await snapshot(api)
        key = {"Idempotency-Key": "booth-1-shot-1"}
        answers = await _race(api, [lambda: submit_multipart(api, headers=key, guest_id="g") for _ in range(4)])
        assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 3
        after = await snapshot(api)
        assert (after.jobs, after.ledger) == (before.jobs + 1, before.ledger + 1)
        assert len(after.stored - before.stored) == 1 and not after.temp_files
        assert await balance(api, event_id=api.event_id) == 9


async def test_a_style_changed_behind_the_cache_is_used_as_it_is_now(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    async with open_app(database, make_settings, credits=10) as api:
        first = assert_accepted(await submit_multipart(api))  # pb_a is cached now
        async with database.session() as session:
            await session.execute(sa.update(Style).where(Style.id == "pb_a").values(prompt="a new prompt", cost=3))
        job = await job_row(api, assert_accepted(await submit_multipart(api))["id"])
        assert (job.prompt, job.cost) == ("a new prompt", 3)
        assert (await job_row(api, first["id"])).cost == 1
        async with database.session() as session:
            reserved = (
                await session.execute(sa.select(CreditLedger.delta).where(CreditLedger.job_id == job.id))
            ).scalar_one()
        assert reserved == -3
        assert await balance(api, event_id=api.event_id) == 6 == await ledger_sum(api, event_id=api.event_id)

        async with database.session() as session:
            await session.execute(sa.update(Style).where(Style.id == "pb_a").values(active=False))
        async with unchanged(api):
            assert_problem(await submit_multipart(api), 422, "unknown_style")
        async with database.session() as session:
            await session.execute(sa.update(Style).where(Style.id == "pb_a").values(active=True))
            jobs = (await session.execute(sa.select(sa.func.count()).select_from(Job))).scalar_one()
        assert jobs == 2
        assert_accepted(await submit_multipart(api))  # inactive styles are never cached: back at once
