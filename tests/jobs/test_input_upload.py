"""How the input photo reaches the provider: our signed storage URL by default, kie's upload API when told to
(or when the storage URL is not publicly reachable), and a pool key is only taken when an upload happens."""

from __future__ import annotations

import json

import pytest

from photobot.db import Database
from tests.support.stack import StackFactory


@pytest.mark.parametrize(("mode", "uploads"), [("never", 0), ("always", 1)])
async def test_input_goes_by_signed_url_or_by_upload(
    sqlite_database: Database, stack: StackFactory, mode: str, uploads: int
) -> None:
    async with stack(sqlite_database, kie_input_upload=mode) as env:
        job_id = await env.submit()
        await env.wait_for(job_id, "completed")
        task = env.sim.state.tasks[(await env.job(job_id)).provider_task_id]
        image_urls = json.loads(task["param"])["input"]["image_input"]
    assert env.sim.stats.uploads == uploads
    assert len(image_urls) == 1
    assert ("/media/inputs/" in image_urls[0]) == (uploads == 0)  # our signed link, or kie's copy


async def test_one_key_per_job_for_the_upload_and_createtask(sqlite_database: Database, stack: StackFactory) -> None:
    """The submit step takes one key: the upload and createTask of a job use it, so with two keys the createTask
    calls alternate (taking one for the upload and the next for createTask sent every createTask to one key)."""
    keys = ("kie-key-a-0123456789", "kie-key-b-0123456789")
    async with stack(
        sqlite_database, kie_input_upload="always", provider="simulator", kie_api_keys=",".join(keys)
    ) as env:
        used = []
        for _ in range(4):
            job_id = await env.submit()
            await env.wait_for(job_id, "completed")
            used.append((await env.job(job_id)).provider_key_id)
    assert env.sim.stats.uploads == 4
    assert dict(env.sim.stats.create_calls) == {keys[0]: 2, keys[1]: 2}
    assert used[0] != used[1] and used[0::2] == [used[0]] * 2 and used[1::2] == [used[1]] * 2
