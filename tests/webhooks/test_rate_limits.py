"""Callback rate limits over HTTP: per client address in this process's memory, per job shared through Redis.

The per-job limit is deferred (`web/ratelimit.py`): a job's first callback in a process costs no Redis round trip
and is counted with the job's next one, so one process enforces the limit exactly and N processes let at most N
more through in a window.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from photobot.db import Database
from tests.support.stack import Stack, StackFactory, fast_sim


async def _statuses(env: Stack, job_id: str, count: int) -> list[int]:
    body = env.callback_body("task-of-nobody")  # an unknown task: answered 200 and changes nothing
    return [(await env.post_callback(body, token=env.token(job_id))).status_code for _ in range(count)]


def _assert_429(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_callbacks_are_limited_per_address(database: Database, stack: StackFactory) -> None:
    async with stack(database, fast_sim(drop_rate=1.0), run_dispatcher=False, callback_rate_limit="4/minute") as env:
        body = env.callback_body("task-of-nobody")
        answers = [await env.post_callback(body, token=env.token(f"job-{i}")) for i in range(5)]
        assert [a.status_code for a in answers[:4]] == [200] * 4  # four jobs, one address
        _assert_429(answers[4])


async def test_callbacks_are_limited_per_job_in_redis(database: Database, stack: StackFactory, redis_url: str) -> None:
    async with stack(
        database, fast_sim(drop_rate=1.0), run_dispatcher=False, callback_job_rate_limit="3/minute",
        redis_url=redis_url,
    ) as env:  # fmt: skip
        assert await _statuses(env, "job-a", 3) == [200, 200, 200]
        _assert_429(await env.post_callback(env.callback_body("task-of-nobody"), token=env.token("job-a")))
        assert await _statuses(env, "job-b", 1) == [200]  # another job is not affected
        client = aioredis.Redis.from_url(redis_url)
        try:
            keys = [k.decode() for k in await client.keys("*")]
        finally:
            await client.aclose()
        assert any("callback-job" in k and "job-a" in k for k in keys), keys  # counted in Redis
        # a job seen once is never reported: its first callback cost no round trip
        assert not any("job-b" in k for k in keys), keys


async def test_the_per_job_limit_is_shared_by_two_processes(
    database: Database, stack: StackFactory, redis_url: str
) -> None:
    options = {"run_dispatcher": False, "callback_job_rate_limit": "3/minute", "redis_url": redis_url}
    async with (
        stack(database, fast_sim(drop_rate=1.0), **options) as first,
        stack(database, fast_sim(drop_rate=1.0), reuse=first, **options) as second,
    ):
        statuses = []
        for _ in range(4):  # one job's callbacks spread over two web processes, alternately
            for env in (first, second):
                statuses += await _statuses(env, "job-a", 1)
        allowed = statuses.count(200)
        # each process lets the job's first callback through unasked: at most one more per process
        assert 3 <= allowed <= 3 + 2, statuses
        assert statuses[-2:] == [429, 429], statuses
