"""Benchmark 5, provider rate: N jobs with 3 keys at `limit` createTask per `window` seconds each.

The simulator accepts only the 3 keys and enforces the limit per key (rate_limit / rate_window_s); the service
gets the same 3 keys (PHOTOBOT_KIE_API_KEYS) and the same limit (PHOTOBOT_KIE_RATE_LIMIT / _WINDOW_S). Jobs are
inserted directly as `pending` (so intake speed does not limit the run); the figure is the time until the
simulator accepted the Nth createTask, against the theoretical minimum N / (3 x limit / window), and the
number of 429s the simulator sent (must be 0). kie.ai's real window is 20 per 10 s; the default here scales
it down to 20 per 2 s (500 jobs: 16.7 s minimum instead of 83 s), which is said in the output.

    python -m bench.provider_rate [--jobs 500] [--limit 20] [--window 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx

from bench import common

KEYS = ["bench-key-aaaa", "bench-key-bbbb", "bench-key-cccc"]


async def run(jobs: int = 500, limit: int = 20, window_s: float = 2.0, timeout_s: float = 300.0) -> dict[str, Any]:
    with common.workdir("rate") as tmp:
        sim_port, port = common.free_port(), common.free_port()
        sim = common.simulator(
            sim_port,
            tmp,
            valid_keys=KEYS,
            rate_limit=limit,
            rate_window_s=window_s,
            callback_delay_s=60.0,
            long_side=64,
        )
        try:
            async with common.throwaway_database() as url:
                await common.flush_redis()
                seeded = await common.seed(url)
                await common.insert_jobs(url, seeded.event_id, jobs, state="pending", far=False)
                env = common.service_env(
                    url,
                    port,
                    tmp / "var",
                    PHOTOBOT_PROVIDER="kie",
                    PHOTOBOT_KIE_API_KEYS=",".join(KEYS),
                    PHOTOBOT_KIE_BASE_URL=sim.url,
                    PHOTOBOT_KIE_UPLOAD_BASE_URL=sim.url,
                    PHOTOBOT_KIE_RATE_LIMIT=str(limit),
                    PHOTOBOT_KIE_RATE_WINDOW_S=str(window_s),
                    PHOTOBOT_KIE_INPUT_UPLOAD="never",
                    PHOTOBOT_ENV="test",
                    PHOTOBOT_ALLOW_PRIVATE_NETWORKS="true",
                )
                _input_file(tmp / "var" / "media")
                service = common.photobot_serve(env, port, tmp, workers=1, worker=True)
                try:
                    started = time.monotonic()
                    service.wait_ready()
                    ready_at = time.monotonic() - started
                    stats: dict[str, Any] = {}
                    async with httpx.AsyncClient(timeout=10) as client:
                        while time.monotonic() - started < timeout_s:
                            stats = (await client.get(f"{sim.url}/_sim/stats")).json()
                            if stats["tasks_created"] >= jobs:
                                break
                            await asyncio.sleep(0.05)
                    elapsed = time.monotonic() - started - ready_at
                finally:
                    service.stop()
                await common.flush_redis()
        finally:
            sim.stop()
    minimum = jobs / (len(KEYS) * limit / window_s)
    return {
        "name": "provider_rate",
        "command": f"python -m bench.provider_rate --jobs {jobs} --limit {limit} --window {window_s:g}",
        "settings": {
            "server": "photobot serve (web + embedded dispatcher)",
            "keys": len(KEYS),
            "limit": f"{limit} createTask / {window_s:g} s per key (kie.ai: 20 / 10 s; window scaled down)",
            "stores": "PostgreSQL + Redis",
        },
        "figures": [
            {
                "name": f"time to submit {jobs} jobs",
                "value": round(elapsed, 2),
                "baseline": round(minimum, 2),
                "unit": "s",
                "ratio": common.ratio(elapsed, minimum),
            },
            {
                "name": "429s from the provider",
                "value": stats.get("rate_limited"),
                "baseline": 0,
                "unit": "count",
                "ratio": None,
            },
        ],
        "details": {
            "sim_stats": stats,
            "service_ready_after_s": round(ready_at, 1),
            "note": "elapsed counts from the service answering /healthz",
        },
    }


def _input_file(media: object) -> None:
    import io
    from pathlib import Path

    from PIL import Image

    path = Path(str(media)) / "inputs" / "bench.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(buf, "JPEG")
    path.write_bytes(buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--window", type=float, default=2.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.jobs, args.limit, args.window)), indent=2))


if __name__ == "__main__":
    main()
