"""Benchmark 6, idle cost: a dispatcher (`photobot worker`) with 10,000 jobs waiting for callbacks (inserted
directly in `waiting`, next check a day away) vs the same dispatcher with 0 jobs: RSS and CPU time of the
process over ~20 s of idling (after a 5 s settle). PostgreSQL + Redis.

    python -m bench.idle_cost [--jobs 10000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from bench import common


async def _measure(url: str, tmp: Any, seconds: float) -> dict[str, float]:
    env = common.service_env(
        url,
        common.free_port(),
        tmp / "var",
        PHOTOBOT_PROVIDER="kie",
        PHOTOBOT_KIE_API_KEYS="bench-key",
        PHOTOBOT_KIE_BASE_URL="http://127.0.0.1:9",
        PHOTOBOT_LOG_LEVEL="INFO",
    )
    worker = common.Server([str(common.BIN / "photobot"), "worker"], env, 0, tmp, f"worker-{time.monotonic_ns()}")
    try:
        deadline = time.monotonic() + 120
        while "dispatcher started" not in worker.log.read_text(errors="replace"):
            if worker.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {worker.log.read_text()[-2000:]}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(5)
        cpu0, t0 = worker.cpu_seconds(), time.monotonic()
        peak = 0
        while time.monotonic() - t0 < seconds:
            peak = max(peak, worker.rss())
            await asyncio.sleep(0.25)
        cpu = worker.cpu_seconds() - cpu0
        wall = time.monotonic() - t0
    finally:
        worker.stop()
    return {"rss_mb": round(peak / 1e6, 1), "cpu_s": round(cpu, 3), "cpu_pct": round(100 * cpu / wall, 2)}


async def run(jobs: int = 10_000, seconds: float = 20.0) -> dict[str, Any]:
    with common.workdir("idle") as tmp:
        async with common.throwaway_database() as url:
            await common.flush_redis()
            seeded = await common.seed(url)
            empty = await _measure(url, tmp, seconds)
            await common.insert_jobs(url, seeded.event_id, jobs, state="waiting", far=True)
            loaded = await _measure(url, tmp, seconds)
            await common.flush_redis()
    return {
        "name": "idle_cost",
        "command": f"python -m bench.idle_cost --jobs {jobs} --seconds {seconds:g}",
        "settings": {
            "server": "photobot worker (dispatcher + notifier)",
            "poll_interval_s": 1.0,
            "stores": "PostgreSQL + Redis",
            "idle_window_s": seconds,
        },
        "figures": [
            {
                "name": f"idle dispatcher RSS, {jobs} waiting",
                "value": loaded["rss_mb"],
                "baseline": empty["rss_mb"],
                "unit": "MB",
                "ratio": common.ratio(loaded["rss_mb"], empty["rss_mb"]),
            },
            {
                "name": f"idle dispatcher CPU, {jobs} waiting",
                "value": loaded["cpu_pct"],
                "baseline": empty["cpu_pct"],
                "unit": "% of a core",
                "ratio": common.ratio(loaded["cpu_pct"], empty["cpu_pct"]),
            },
        ],
        "details": {"with_jobs": loaded, "without_jobs": empty},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.jobs, args.seconds)), indent=2))


if __name__ == "__main__":
    main()
