"""kill -9 of `photobot worker` processes at random points, two workers competing for the same jobs.

The web app (intake and callbacks) runs in the test; two `photobot worker` processes share a PostgreSQL
database, a Redis (our own) and the storage directory, with a 5 s lease. While jobs keep arriving, one of them
is killed with SIGKILL at a random moment after it started working, and restarted, again and again.
Afterwards every job must be final and the audit clean: a crashed step is taken over when its lease expires
and nothing happens twice. (Workers are forked from a pre-imported parent, see forkserver.py, so restarts
are quick even on a loaded machine; each child runs the real `photobot worker` command.)
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from photobot.db import Database
from tests.chaos.harness import ForkServer, OwnRedis, WorkerProcess, chaos_env, scale, settings_env, sim_config
from tests.support.smtp import SMTPServer


async def test_kill9_workers(
    pg_database: Database, tmp_path: Path, smtp_server: SMTPServer, own_redis: OwnRedis, chaos_full: bool
) -> None:
    kills, max_jobs = scale(chaos_full, 3, 20), scale(chaos_full, 20, 400)
    config = sim_config(callback_delay_s=0.3, callback_jitter_s=0.7)
    async with chaos_env(
        pg_database, tmp_path, config, smtp=smtp_server, run_dispatcher=False,
        redis_url=own_redis.url, lease_s=5, reconcile_after_s=3, job_timeout_s=600,
    ) as env:  # fmt: skip
        server = ForkServer(settings_env(env.settings) | {"PHOTOBOT_LOG_LEVEL": "INFO"}, tmp_path)
        workers = [WorkerProcess(server, tmp_path, f"worker{i}") for i in range(2)]
        rng = random.Random(20261122)
        stop = asyncio.Event()
        try:
            for worker in workers:
                await worker.start()
            await asyncio.gather(*(w.wait_ready() for w in workers))

            async def killer() -> None:
                try:
                    for _ in range(kills):
                        victim = rng.choice(workers)
                        await asyncio.sleep(rng.uniform(0.2, 2.0))
                        await victim.kill9()
                        await victim.start()
                        await victim.wait_ready()
                finally:
                    stop.set()

            async def submitter() -> None:
                while not stop.is_set() and len(env.submitted) < max_jobs:
                    await env.submit(1)
                    await asyncio.sleep(rng.uniform(0.05, 0.3) if chaos_full else rng.uniform(0.1, 0.6))

            await asyncio.gather(killer(), submitter())
            env.notes["kills"] = sum(w.kills for w in workers)
            try:
                result = await env.audit_all("kill -9 workers (2 competing)", timeout_s=120, expect="completed")
            finally:
                stuck = {j: s for j, s in (await env.timeline()).items() if "completed" not in s[-1]}
                for job_id, steps in stuck.items():
                    print(job_id[:8], " | ".join(steps))
            stats = await env.sim_stats()
            env.notes["tasks_created"] = stats["tasks_created"]
        finally:
            for worker in workers:
                await worker.stop()
            server.close()
    assert env.notes["kills"] == kills
    assert result.completed == len(env.submitted)
