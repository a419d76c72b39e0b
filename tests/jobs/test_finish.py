"""The finish step downloads alongside the provider's confirmation, and keeps the download only if confirmed."""

from __future__ import annotations

import asyncio
import hashlib

from photobot.db import Database
from tests.support.api import read_stored
from tests.support.stack import StackFactory, fast_sim


async def test_an_unconfirmed_early_download_is_thrown_away(database: Database, stack: StackFactory) -> None:
    # Callbacks are dropped: we post them ourselves. Job B's callback names job A's (real, downloadable) result;
    # recordInfo confirms B's own URL, so B must store its own image and leave no temp file behind.
    async with stack(database, fast_sim(drop_rate=1.0)) as env:
        a, b = await env.submit(style="pb_a"), await env.submit(style="pb_b")  # different prompts: images
        job_a = await env.wait_state(a, ("waiting",))
        job_b = await env.wait_state(b, ("waiting",))
        while any(env.sim.state.tasks[j.provider_task_id or ""].get("state") != "success" for j in (job_a, job_b)):
            await asyncio.sleep(0.05)
        task_a, task_b = job_a.provider_task_id or "", job_b.provider_task_id or ""
        assert (await env.post_callback(env.callback_body(task_a), token=env.token(a))).status_code == 200
        await env.wait_for(a, "completed")
        url_a = (await env.job(a)).result_urls[0]
        forged = env.callback_body(task_b, result_url=url_a)
        assert (await env.post_callback(forged, token=env.token(b))).status_code == 200
        await env.wait_for(b, "completed")
        stored_a, stored_b = await env.job(a), await env.job(b)
        digest = [hashlib.sha256(read_stored(env, j.result_key or "")).hexdigest() for j in (stored_a, stored_b)]
        assert digest[0] != digest[1]  # B kept its own confirmed result, not A's
        tmp = env.settings.var_dir / "tmp"
        leftovers = [p.name for p in tmp.glob("result-*")] if tmp.exists() else []
        assert leftovers == []  # the thrown-away download was deleted
