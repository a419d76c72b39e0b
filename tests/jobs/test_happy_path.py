"""Happy path end to end through real HTTP: submit → createTask → callback → confirm → store → completed."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from photobot.db import Database
from tests.support.stack import Stack, StackFactory


async def _happy(env: Stack) -> dict[str, Any]:
    job_id = await env.submit()
    view = await env.wait_for(job_id, "completed")
    assert view["error"] is None
    assert view["result_url"]
    async with httpx.AsyncClient(timeout=10) as plain:
        result = await plain.get(view["result_url"])
    assert result.status_code == 200, result.text[:200]
    Image.open(io.BytesIO(result.content)).verify()  # a real image, from our storage
    assert not view["result_url"].startswith(env.sim.url)  # our link, not the provider's
    job = await env.job(job_id)
    assert job.result_key and job.result_key.startswith(f"results/{job_id}.")
    assert job.provider_task_id in env.sim.state.tasks
    assert job.submitted_at and job.callback_at and job.completed_at
    assert await env.ledger(job_id) == ["reserve", "settle"]
    assert env.sim.stats.callbacks_sent == 1 and env.sim.stats.record_calls >= 1  # confirmed with recordInfo
    assert [(t, o) for t, o, _ in await env.webhook_events(job_id)] == [(job.provider_task_id, "success")]
    return view


async def test_happy_path_local_storage(database: Database, stack: StackFactory) -> None:
    async with stack(database) as env:
        await _happy(env)


async def test_happy_path_s3_storage(
    pg_database: Database, stack: StackFactory, s3_storage_url: str, s3_endpoint: str
) -> None:
    async with stack(pg_database, storage_url=s3_storage_url) as env:
        view = await _happy(env)
        assert view["result_url"].startswith(s3_endpoint)  # a presigned link into the bucket (moto's S3)


@pytest.mark.parametrize("count", [5])
async def test_many_jobs_complete(database: Database, stack: StackFactory, count: int) -> None:
    async with stack(database) as env:
        ids = [await env.submit() for _ in range(count)]
        for job_id in ids:
            await env.wait_for(job_id, "completed")
            assert await env.ledger(job_id) == ["reserve", "settle"]
