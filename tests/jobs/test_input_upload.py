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
