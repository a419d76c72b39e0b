"""Benchmark 4, memory: peak RSS of the service (psutil, the server process tree) while it finishes N jobs at
once whose results are 20 MB each (simulator result_pad_bytes=20_000_000), vs the same service idle.

Results are streamed to a temp file and then to storage, so the peak should stay flat (not N x 20 MB).
Service: `photobot serve` (web + embedded dispatcher, PostgreSQL + Redis, local storage); the simulator runs
as `photobot simulator` in its own process (its memory holds the results and is not counted).

    python -m bench.memory [--jobs 200] [--pad 20000000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
import psutil

from bench import common


async def run(jobs: int = 200, pad: int = 20_000_000, timeout_s: float = 600.0) -> dict[str, Any]:
    with common.workdir("memory") as tmp:
        sim_port, port = common.free_port(), common.free_port()
        sim = common.simulator(
            sim_port,
            tmp,
            result_pad_bytes=pad,
            callback_delay_s=3.0,
            rate_limit=100_000,
            long_side=256,
            max_files=jobs * 2 + 10,
        )
        try:
            async with common.throwaway_database() as url:
                await common.flush_redis()
                seeded = await common.seed(url)
                env = common.service_env(
                    url,
                    port,
                    tmp / "var",
                    PHOTOBOT_PROVIDER="simulator",
                    PHOTOBOT_KIE_BASE_URL=sim.url,
                    PHOTOBOT_KIE_UPLOAD_BASE_URL=sim.url,
                    PHOTOBOT_ENV="test",
                    PHOTOBOT_ALLOW_PRIVATE_NETWORKS="true",
                    PHOTOBOT_MAX_RESULT_BYTES=str(pad * 2),
                    PHOTOBOT_KIE_RATE_LIMIT="100000",
                )
                service = common.photobot_serve(env, port, tmp, workers=1, worker=True)
                try:
                    service.wait_ready()
                    idle_peak = idle_pss = 0
                    idle_roles: dict[str, dict[str, int]] = {}
                    end = time.monotonic() + 5
                    while time.monotonic() < end:
                        idle_peak, idle_pss = max(idle_peak, service.rss()), max(idle_pss, service.pss())
                        _by_role(service, idle_roles)
                        await asyncio.sleep(0.1)

                    photo = _small_jpeg()
                    ids: list[str] = []
                    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
                        sem = asyncio.Semaphore(16)

                        async def submit(i: int) -> None:
                            async with sem:
                                r = await client.post(
                                    "/v1/jobs",
                                    data={"style": "pb_a"},
                                    files={"image": ("g.jpg", photo, "image/jpeg")},
                                    headers={"Authorization": f"Bearer {seeded.kiosk}"},
                                )
                                r.raise_for_status()
                                ids.append(r.json()["id"])

                        started = time.monotonic()
                        submitting = asyncio.gather(*(submit(i) for i in range(jobs)))
                        peak, peak_pss, samples = 0, 0, 0
                        roles: dict[str, dict[str, int]] = {}
                        states: dict[str, int] = {}
                        while time.monotonic() - started < timeout_s:
                            peak, peak_pss = max(peak, service.rss()), max(peak_pss, service.pss())
                            _by_role(service, roles)
                            samples += 1
                            if submitting.done():
                                submitting.result()
                                states = await _states(url)
                                if states.get("completed", 0) + states.get("failed", 0) >= jobs:
                                    break
                            await asyncio.sleep(0.1)
                        elapsed = time.monotonic() - started
                        states = await _states(url)
                finally:
                    service.stop()
                await common.flush_redis()
        finally:
            sim.stop()
    mb = lambda b: round(b / 1e6, 1)  # noqa: E731
    return {
        "name": "memory",
        "command": f"python -m bench.memory --jobs {jobs} --pad {pad}",
        "settings": {
            "server": "photobot serve (uvicorn, web + embedded dispatcher)",
            "workers": 1,
            "worker_concurrency": 16,
            "result_bytes": pad,
            "jobs": jobs,
            "stores": "PostgreSQL + Redis, local storage",
        },
        "figures": [
            {
                "name": f"peak RSS finishing {jobs} x {mb(pad)} MB",
                "value": mb(peak),
                "baseline": mb(idle_peak),
                "unit": "MB",
                "ratio": common.ratio(peak, idle_peak),
            },
            {
                "name": f"peak PSS finishing {jobs} x {mb(pad)} MB",
                "value": mb(peak_pss),
                "baseline": mb(idle_pss),
                "unit": "MB",
                "ratio": common.ratio(peak_pss, idle_pss),
            },
        ],
        "details": {
            "states": states,
            "elapsed_s": round(elapsed, 1),
            "rss_samples": samples,
            "idle_peak_mb": mb(idle_peak),
            "peak_mb": mb(peak),
            "idle_peak_pss_mb": mb(idle_pss),
            "peak_pss_mb": mb(peak_pss),
            "idle_by_process_mb": _roles_mb(idle_roles),
            "load_by_process_mb": _roles_mb(roles),
            "note": "RSS sums every process of the tree (web + dispatcher, and its image processes), counting the "
            "pages they share once per process; PSS divides shared pages among them",
        },
    }


def _role(cmdline: list[str]) -> str:
    text = " ".join(cmdline)
    if "resource_tracker" in text:
        return "resource tracker"
    if "forkserver" in text:
        return "forkserver"
    if "spawn_main" in text or "multiprocessing" in text:
        return "image process"
    return "web + dispatcher"


def _by_role(service: common.Server, peaks: dict[str, dict[str, int]]) -> None:
    """Peak RSS and PSS of each kind of process in the tree (image processes: the largest one), so the sum can
    be read: which process holds what, idle and under load."""
    for proc in service.tree():
        try:
            role, info = _role(proc.cmdline()), proc.memory_full_info()
        except psutil.Error:
            continue
        seen = peaks.setdefault(role, {"rss": 0, "pss": 0, "uss": 0, "count": 0})
        seen["rss"], seen["pss"] = max(seen["rss"], info.rss), max(seen["pss"], info.pss)
        seen["uss"] = max(seen["uss"], info.uss)
    counts: dict[str, int] = {}
    for proc in service.tree():
        with contextlib.suppress(psutil.Error):
            counts[_role(proc.cmdline())] = counts.get(_role(proc.cmdline()), 0) + 1
    for role, n in counts.items():
        peaks[role]["count"] = max(peaks[role].get("count", 0), n)


def _roles_mb(peaks: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    return {role: {k: v if k == "count" else round(v / 1e6, 1) for k, v in d.items()} for role, d in peaks.items()}


def _small_jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 240), "tomato").save(buf, "JPEG")
    return buf.getvalue()


async def _states(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    from photobot.db import Database
    from photobot.db.models import Job

    db = Database(url)
    try:
        async with db.session() as session:
            rows = await session.execute(sa.select(Job.state, sa.func.count()).group_by(Job.state))
            return {state: int(n) for state, n in rows.all()}
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--pad", type=int, default=20_000_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.jobs, args.pad)), indent=2))


if __name__ == "__main__":
    main()
