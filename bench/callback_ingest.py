"""Benchmark 1, callback ingest: POST /webhooks/kie at 32 connections vs a bare endpoint.

Jobs are inserted directly in `waiting` with a provider task id; every request carries a real kie callback body
(the simulator's shape) and that job's callback token, so each distinct request is accepted (job → finishing).
The duplicate-heavy variant replays callbacks of 50 jobs that were already accepted (answered 200, recorded
nothing). The baseline is `bench.bare:app`, which reads the body and answers the same JSON, served by uvicorn
with the same worker count and event loop. Service: `photobot serve --no-worker` (PostgreSQL + Redis).

    python -m bench.callback_ingest [--workers 1] [--jobs 12000] [--duration 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from bench import common, profile

CONNECTIONS = 32


def kie_body(task_id: str) -> str:
    now_ms = int(time.time() * 1000)
    data = {
        "taskId": task_id,
        "model": "nano-banana-pro",
        "state": "success",
        "param": json.dumps({"model": "nano-banana-pro", "input": {"prompt": "bench"}}),
        "resultJson": json.dumps({"resultUrls": [f"https://tempfile.aiquickdraw.com/r/{task_id}.png"]}),
        "failCode": "",
        "failMsg": None,
        "costTime": 9000,
        "completeTime": now_ms,
        "createTime": now_ms - 9000,
        "updateTime": now_ms,
        "creditsConsumed": 18,
    }
    return json.dumps({"code": 200, "msg": "Playground task completed successfully.", "data": data})


def requests_for(jobs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    from photobot.signing import CallbackTokens

    tokens = CallbackTokens([common.SECRET])
    deadline = time.time() + 2 * 86400
    return [
        {
            "method": "POST",
            "path": f"/webhooks/kie?token={tokens.issue(job_id, 'kie', deadline)}",
            "headers": {"Content-Type": "application/json"},
            "body": kie_body(task_id),
        }
        for job_id, task_id in jobs
    ]


async def run(
    workers: int = 1, jobs: int = 12000, duration_s: float = 15.0, with_profile: bool = False
) -> dict[str, Any]:
    warm, dup = 200, 50
    with common.workdir("callback") as tmp:
        async with common.throwaway_database() as url:
            await common.flush_redis()
            seeded = await common.seed(url)
            rows = await common.insert_jobs(url, seeded.event_id, jobs + warm + dup, state="waiting")
            warm_rows, dup_rows, main_rows = rows[:warm], rows[warm : warm + dup], rows[warm + dup :]
            distinct, warmup, dups = requests_for(main_rows), requests_for(warm_rows), requests_for(dup_rows)
            port = common.free_port()
            env = common.service_env(
                url,
                port,
                tmp / "var",
                PHOTOBOT_PROVIDER="kie",
                PHOTOBOT_KIE_API_KEYS="bench-key",
                PHOTOBOT_KIE_BASE_URL="http://127.0.0.1:9",
            )
            results: dict[str, Any] = {}
            service = common.photobot_serve(env, port, tmp, workers=workers)
            try:
                service.wait_ready()
                common.run_load(port, warmup + dups, connections=8, requests_max=warm + dup, duration_s=60, workdir=tmp)
                spy = profile.start(service.proc.pid, duration_s, tmp / "profile.txt") if with_profile else None
                results["service_distinct"] = common.run_load(
                    port,
                    distinct,
                    connections=CONNECTIONS,
                    requests_max=len(distinct),
                    duration_s=duration_s,
                    workdir=tmp,
                )
                if spy is not None:
                    spy.wait(60)
                    results["profile_distinct"] = profile.summarise(tmp / "profile.txt")
                results["service_duplicates"] = common.run_load(
                    port, dups, connections=CONNECTIONS, requests_max=100_000, duration_s=duration_s, workdir=tmp
                )
                accepted = await _count_finishing(url)
            finally:
                service.stop()
            await common.flush_redis()
        bare_port = common.free_port()
        bare = common.bare_server(bare_port, tmp, workers=workers)
        try:
            bare.wait_ready()
            common.run_load(bare_port, warmup, connections=8, requests_max=warm, duration_s=60, workdir=tmp)
            results["bare_distinct"] = common.run_load(
                bare_port,
                distinct,
                connections=CONNECTIONS,
                requests_max=len(distinct),
                duration_s=duration_s,
                workdir=tmp,
            )
            results["bare_duplicates"] = common.run_load(
                bare_port, dups, connections=CONNECTIONS, requests_max=100_000, duration_s=duration_s, workdir=tmp
            )
        finally:
            bare.stop()
    sd, bd = results["service_distinct"], results["bare_distinct"]
    su, bu = results["service_duplicates"], results["bare_duplicates"]
    return {
        "name": "callback_ingest",
        "command": f"python -m bench.callback_ingest --workers {workers} --jobs {jobs} --duration {duration_s:g}",
        "settings": {
            "server": "photobot serve --no-worker (uvicorn)",
            "workers": workers,
            "connections": CONNECTIONS,
            "stores": "PostgreSQL + Redis",
            "bound": f"{len(distinct)} requests or {duration_s:g} s",
        },
        "figures": [
            _fig("callback distinct: req/s", sd["rps"], bd["rps"], "req/s"),
            _fig("callback distinct: p50", sd["p50_ms"], bd["p50_ms"], "ms"),
            _fig("callback distinct: p99", sd["p99_ms"], bd["p99_ms"], "ms"),
            _fig("callback duplicates: req/s", su["rps"], bu["rps"], "req/s"),
            _fig("callback duplicates: p50", su["p50_ms"], bu["p50_ms"], "ms"),
            _fig("callback duplicates: p99", su["p99_ms"], bu["p99_ms"], "ms"),
        ],
        "details": {**results, "jobs_moved_to_finishing": accepted},
    }


def _fig(name: str, value: float, baseline: float, unit: str) -> dict[str, Any]:
    return {"name": name, "value": value, "baseline": baseline, "unit": unit, "ratio": common.ratio(value, baseline)}


async def _count_finishing(url: str) -> int:
    from sqlalchemy import func, select

    from photobot.db import Database
    from photobot.db.models import Job

    db = Database(url)
    try:
        async with db.session() as session:
            return int((await session.execute(select(func.count()).where(Job.state == "finishing"))).scalar_one())
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=12000)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--profile", action="store_true", help="py-spy the service during the distinct run")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.workers, args.jobs, args.duration, args.profile)), indent=2))


if __name__ == "__main__":
    main()
