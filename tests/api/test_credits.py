"""Credits at intake: reserve with the job in one transaction, 402 when nothing is left, no leftovers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import CreditLedger, Job
from photobot.settings import Settings
from tests.support.api import (
    assert_accepted,
    assert_problem,
    balance,
    ledger_sum,
    snapshot,
    submit_json,
    submit_multipart,
    unchanged,
)
from tests.support.images import jpeg
from tests.support.stack import Stack, open_app


async def test_reserve_writes_job_and_ledger_row_together(api: Stack) -> None:
    before = await snapshot(api)
    body = assert_accepted(await submit_multipart(api))
    after = await snapshot(api)
    assert (after.jobs, after.ledger, after.transitions) == (before.jobs + 1, before.ledger + 1, before.transitions + 1)
    assert after.stored - before.stored == {f"uploads/{body['id']}.jpg"}
    async with api.db.session() as session:
        rows = (await session.execute(sa.select(CreditLedger).where(CreditLedger.job_id == body["id"]))).scalars().all()
    assert [(r.reason, r.delta, r.event_id) for r in rows] == [("reserve", -1, api.event_id)]
    assert await balance(api, event_id=api.event_id) == 9 == await ledger_sum(api, event_id=api.event_id)


async def test_no_credits_is_402_and_leaves_nothing(database: Database, make_settings: Callable[..., Settings]) -> None:
    async with open_app(database, make_settings, credits=1) as served:
        api = served
        assert_accepted(await submit_json(api))
        async with unchanged(api):
            for submit in (submit_json, submit_multipart):
                body = assert_problem(await submit(api), 402, "no_credits")
                assert body["title"] and body["detail"]
        # the user account (B2C) runs dry the same way
        for _ in range(5):
            assert_accepted(await submit_json(api, token=api.app_token, user_id=api.user_id))
        async with unchanged(api):
            assert_problem(await submit_json(api, token=api.app_token, user_id=api.user_id), 402, "no_credits")
        assert await balance(api, event_id=api.event_id) == 0
        assert await balance(api, user_id=api.user_id) == 0


async def test_hundred_concurrent_submissions_against_ten_credits(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    """Exactly 10 win; the other 90 get 402 and leave no job, ledger row or stored photo."""
    async with open_app(database, make_settings, credits=10, submit_rate_limit="1000/minute") as served:
        await _hundred_against_ten(served)


async def _hundred_against_ten(api: Stack) -> None:
    photo = jpeg()
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=api.base_url, timeout=60, limits=limits) as client:

        async def one(i: int) -> int:
            response = await client.post(
                "/v1/jobs",
                data={"style": "pb_a", "guest_id": f"g{i}"},
                files={"image": ("p.jpg", photo, "image/jpeg")},
                headers=api.auth,
            )
            if response.status_code == 402:
                assert_problem(response, 402, "no_credits")
            return response.status_code

        statuses = Counter(await asyncio.gather(*(one(i) for i in range(100))))
    assert statuses == {202: 10, 402: 90}, statuses
    assert await balance(api, event_id=api.event_id) == 0
    assert await ledger_sum(api, event_id=api.event_id) == 0
    state = await snapshot(api)
    assert state.jobs == 10 and len(state.stored) == 10 and not state.temp_files
    async with api.db.session() as session:
        job_ids = set((await session.execute(sa.select(Job.id))).scalars())
        reserved = (
            await session.execute(sa.select(CreditLedger.job_id).where(CreditLedger.reason == "reserve"))
        ).scalars()
    assert set(reserved) == job_ids
    assert state.stored == {f"uploads/{job_id}.jpg" for job_id in job_ids}
