"""Callback ingest: POST /webhooks/kie against the floor, with wrk.

Each request is a real kie success callback for its own job (inserted in `waiting`), with that job's callback
token, so every distinct request moves a job to `finishing`. The floor (`bench/baseline.py`) gets its own jobs
and does only the necessary work: parse the body and one statement (record the event ON CONFLICT DO NOTHING and
move the job if it is waiting). Bare Starlette (read the body, answer) is printed for reference. Runs alternate
floor, service, floor, service… and each figure is the median of `--repeat` runs.

    python -m bench.callback_ingest [--workers 1] [--repeat 3] [--duration 8] [--connections 32]

Service: `photobot serve --no-worker` on PostgreSQL + Redis (what production runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import common, profile, wrk

# Distinct jobs per run. A side that answers them all before wrk's duration is over is measured over the span it
# took (bench/wrk.lua), so a fast floor is not capped at jobs / duration (the floor now passes 5,000 req/s).
JOBS_PER_RUN = {32: 24_000, 1: 5_000}


def kie_body(task_id: str) -> bytes:
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
    return json.dumps({"code": 200, "msg": "Playground task completed successfully.", "data": data}).encode()


async def insert_waiting_jobs(url: str, event_id: int, count: int) -> list[tuple[str, str]]:
    """`count` jobs in `waiting` with a task id each, in one statement; returns (job id, task id)."""
    conn = await asyncpg.connect(common.asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            """
            INSERT INTO jobs (id, public_id, event_id, style_id, cost, provider, model, prompt, input_key,
                              reference_keys, provider_meta, state, attempts, crashes, deadline_at, result_urls,
                              created_at, updated_at, submitted_at, next_attempt_at, provider_task_id, output_format)
            SELECT md5(random()::text || g), md5(random()::text || g || 'p'), $1, 'pb_a', 1, 'kie',
                   'nano-banana-pro', 'bench', 'inputs/bench.jpg', '[]', '{}', 'waiting', 0, 0,
                   now() + interval '2 days', '[]', now(), now(), now(), now() + interval '1 day',
                   md5(random()::text || g || 't'), 'png'
            FROM generate_series(1, $2) g
            RETURNING id, provider_task_id
            """,
            event_id,
            count,
        )
    finally:
        await conn.close()
    return [(r["id"], r["provider_task_id"]) for r in rows]


def service_requests(jobs: list[tuple[str, str]]) -> list[wrk.Request]:
    from photobot.signing import CallbackTokens

    tokens = CallbackTokens([common.SECRET])
    deadline = time.time() + 2 * 86400
    headers = {"Content-Type": "application/json"}
    return [
        wrk.Request(f"/webhooks/kie?token={tokens.issue(job_id, 'kie', deadline)}", kie_body(task), headers)
        for job_id, task in jobs
    ]


def floor_requests(jobs: list[tuple[str, str]], prefix: str = "") -> list[wrk.Request]:
    headers = {"Content-Type": "application/json"}
    return [wrk.Request(f"{prefix}/webhooks/kie?job={job_id}", kie_body(task), headers) for job_id, task in jobs]


async def run(
    workers: int = 1, repeat: int = 3, duration_s: float = 8.0, connections: int = 32, with_profile: bool = False
) -> dict[str, Any]:
    n = JOBS_PER_RUN.get(connections, 24_000)
    with common.workdir("callback") as tmp:
        async with common.throwaway_database() as url:
            await common.flush_redis()
            seeded = await common.seed(url)
            port, floor_port = common.free_port(), common.free_port()
            pool = max(4, connections // workers)  # each process sees its share of the connections
            env = common.service_env(
                url, port, tmp / "var", PHOTOBOT_PROVIDER="kie", PHOTOBOT_KIE_API_KEYS="bench-key",
                PHOTOBOT_KIE_BASE_URL="http://127.0.0.1:9", PHOTOBOT_DATABASE_POOL_SIZE=str(pool),
            )  # fmt: skip
            service = common.photobot_serve(env, port, tmp, workers=workers)
            floor = common.baseline_server(floor_port, tmp, url, workers=workers, pool=pool)
            runs: dict[str, list[dict[str, Any]]] = {"floor": [], "service": [], "bare": [], "dup": [], "dup_floor": []}
            try:
                service.wait_ready()
                floor.wait_ready()
                warm = await insert_waiting_jobs(url, seeded.event_id, 400)
                dup_jobs = warm[200:]
                wrk.run(service.url, wrk.write_spec(tmp / "warm-s.spec", service_requests(warm[:100])),
                        connections=8, duration_s=3, server_cpu_s=service.cpu_seconds, once=True)  # fmt: skip
                wrk.run(floor.url, wrk.write_spec(tmp / "warm-f.spec", floor_requests(warm[100:200])),
                        connections=8, duration_s=3, server_cpu_s=floor.cpu_seconds, once=True)  # fmt: skip
                # duplicates: callbacks of jobs already accepted (answered 200, nothing changes)
                dup_s = wrk.write_spec(tmp / "dup-s.spec", service_requests(dup_jobs))
                dup_f = wrk.write_spec(tmp / "dup-f.spec", floor_requests(dup_jobs))
                wrk.run(service.url, dup_s, connections=4, duration_s=3, server_cpu_s=service.cpu_seconds, once=True)
                bare_spec = wrk.write_spec(tmp / "bare.spec", floor_requests(warm[:200], prefix="/bare"))
                spy = None

                def load(server: common.Server, spec: Path, seconds: float, once: bool) -> dict[str, Any]:
                    return wrk.run(server.url, spec, connections=connections, duration_s=seconds,
                                   server_cpu_s=server.cpu_seconds, once=once)  # fmt: skip

                for i in range(repeat):
                    for side, server, build in (("floor", floor, floor_requests),
                                                ("service", service, service_requests)):  # fmt: skip
                        jobs = await insert_waiting_jobs(url, seeded.event_id, n)
                        spec = wrk.write_spec(tmp / f"{side}-{i}.spec", build(jobs))
                        if with_profile and side == "service" and i == repeat - 1:
                            spy = profile.start(service.proc.pid, duration_s, tmp / "profile.txt")
                        runs[side].append(load(server, spec, duration_s, True))
                    runs["bare"].append(load(floor, bare_spec, duration_s / 2, False))
                    runs["dup_floor"].append(load(floor, dup_f, duration_s / 2, False))
                    runs["dup"].append(load(service, dup_s, duration_s / 2, False))
                prof = None
                if spy is not None:
                    spy.wait(60)
                    prof = profile.summarise(tmp / "profile.txt")
                moved = await _count(url, "finishing")
            finally:
                service.stop()
                floor.stop()
            await common.flush_redis()
    med = {k: wrk.medians(v) for k, v in runs.items()}
    s, f, b, d, df = med["service"], med["floor"], med["bare"], med["dup"], med["dup_floor"]
    label = f"callback, {connections} conn{'s' if connections > 1 else ''}, {workers} worker{'s' * (workers > 1)}"
    figures = [
        _fig(f"{label}: req/s", s["rps"], f["rps"], "req/s"),
        _fig(f"{label}: p50", s["p50_ms"], f["p50_ms"], "ms"),
        _fig(f"{label}: p99", s["p99_ms"], f["p99_ms"], "ms"),
        _fig(f"{label}: server CPU/req", s["server_cpu_ms_per_req"], f["server_cpu_ms_per_req"], "ms"),
        _fig(f"{label}: PostgreSQL CPU/req", s["db_cpu_ms_per_req"], f["db_cpu_ms_per_req"], "ms"),
        _fig(f"{label}: Redis CPU/req", s.get("redis_cpu_ms_per_req", 0), f.get("redis_cpu_ms_per_req", 0), "ms"),
        # what bounds the rate when everything shares the machine's cores (server, stores and the client)
        _fig(f"{label}: machine CPU/req", _machine_cpu(s), _machine_cpu(f), "ms"),
        _fig(f"{label}: req/s vs bare Starlette", s["rps"], b["rps"], "req/s"),
        _fig(f"{label}, duplicates: req/s", d["rps"], df["rps"], "req/s"),
        _fig(f"{label}, duplicates: p99", d["p99_ms"], df["p99_ms"], "ms"),
    ]
    errors = sum(r["non_2xx"] + r["socket_errors"] for v in runs.values() for r in v)
    return {
        "name": f"callback_ingest_c{connections}_w{workers}",
        "command": f"python -m bench.callback_ingest --workers {workers} --connections {connections} "
        f"--repeat {repeat} --duration {duration_s:g}",
        "settings": {
            "server": "photobot serve --no-worker (uvicorn)",
            "workers": workers,
            "connections": connections,
            "client": f"wrk -t{min(wrk.THREADS, connections)}",
            "stores": "PostgreSQL + Redis",
            "floor": "Starlette + asyncpg, one statement (bench/baseline.py)",
            "median_of": repeat,
        },
        "figures": figures,
        "details": {**med, "raw": runs, "jobs_moved_to_finishing": moved, "errors": errors, "profile": prof},
    }


def _machine_cpu(figures: dict[str, Any]) -> float:
    keys = ("server_cpu_ms_per_req", "db_cpu_ms_per_req", "redis_cpu_ms_per_req", "client_cpu_ms_per_req")
    return round(sum(figures.get(k, 0) for k in keys), 3)


def _fig(name: str, value: float, baseline: float, unit: str) -> dict[str, Any]:
    return {"name": name, "value": value, "baseline": baseline, "unit": unit, "ratio": common.ratio(value, baseline)}


async def _count(url: str, state: str) -> int:
    conn = await asyncpg.connect(common.asyncpg_dsn(url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM jobs WHERE state = $1", state))
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--profile", action="store_true", help="py-spy the service during the last service run")
    args = parser.parse_args()
    result = asyncio.run(run(args.workers, args.repeat, args.duration, args.connections, args.profile))
    Path(common.RESULTS).mkdir(exist_ok=True)
    print(json.dumps({k: v for k, v in result.items() if k != "details"} | {"details": {
        k: v for k, v in result["details"].items() if k != "raw"}}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
