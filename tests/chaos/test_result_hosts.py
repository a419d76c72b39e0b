"""Result hosts misbehaving: hanging, oversized bodies (with and without Content-Length), non-image bodies.

The simulator's `result_host` points at a small server of ours that fronts the simulator's file host. Each
new task gets the next behaviour in turn; a job whose host hangs once must still complete (the finish step
retries), a job whose result is oversized or not an image must fail after its retries, with its credit
released. In the short form the hang ends with a 503 after a few seconds; in the full form it outlasts the
result fetcher's 60 s timeout once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from photobot.db import Database
from photobot.db.models import Job
from tests.chaos.harness import chaos_env, scale, sim_config
from tests.support.servers import serve

MAX_RESULT = 1_000_000
MODES = ("hang_once", "oversized_streamed", "oversized_declared", "not_an_image")


def bad_host(simulator: list[str], hang_s: float) -> tuple[Starlette, dict[str, str], Counter[str]]:
    modes: dict[str, str] = {}
    hits: Counter[str] = Counter()

    async def files(request: Request) -> Response:
        path = request.path_params["path"]
        async with httpx.AsyncClient() as client:
            upstream = await client.get(f"{simulator[0]}/files/{path}")
        if not path.startswith("results/"):
            return Response(upstream.content, upstream.status_code, media_type=upstream.headers.get("content-type"))
        mode = modes.setdefault(path, MODES[len(modes) % len(MODES)])
        hits[mode] += 1
        if mode == "hang_once" and hits[f"{path}:seen"] == 0:
            hits[f"{path}:seen"] += 1
            await asyncio.sleep(hang_s)
            return Response("upstream timeout", 503)
        if mode == "oversized_streamed":

            async def body():  # no Content-Length: the limit must hold while streaming
                yield upstream.content[:64]
                for _ in range(MAX_RESULT // 65536 + 4):
                    yield b"\0" * 65536

            return StreamingResponse(body(), media_type="image/png")
        if mode == "oversized_declared":
            return Response(b"\x89PNG" + b"\0" * (MAX_RESULT + 10), media_type="image/png")
        if mode == "not_an_image":
            return Response("<html><body>Sorry, not a photo</body></html>", media_type="image/png")
        return Response(upstream.content, upstream.status_code, media_type=upstream.headers.get("content-type"))

    return Starlette(routes=[Route("/files/{path:path}", files)]), modes, hits


async def test_bad_result_hosts(pg_database: Database, tmp_path: Path, chaos_full: bool) -> None:
    rounds = scale(chaos_full, 1, 5)
    hang_s = 65.0 if chaos_full else 2.0
    simulator: list[str] = []
    app, modes, _hits = bad_host(simulator, hang_s)
    async with serve(app) as host_url:
        port = host_url.rsplit(":", 1)[1]
        config = sim_config(result_host=host_url)
        async with chaos_env(
            pg_database, tmp_path, config, max_result_bytes=MAX_RESULT, kie_result_hosts=[f"127.0.0.1:{port}"],
            job_timeout_s=600,
        ) as env:  # fmt: skip
            simulator.append(env.sim.url)
            for _ in range(rounds):  # one job per behaviour and round, in order
                for _mode in MODES:
                    await env.submit(1)
                    await asyncio.sleep(0.6)
            result = await env.audit_all("result hosts: hang/oversize/non-image", timeout_s=200 + hang_s * 2)
            async with pg_database.session() as session:
                rows = (await session.execute(sa.select(Job.provider_task_id, Job.state, Job.error_code))).all()
            outcome = {}
            for task_id, state, error in rows:
                mode = next((m for p, m in modes.items() if task_id and task_id in p), "unknown")
                outcome.setdefault(mode, Counter())[f"{state}:{error or '-'}"] += 1
            env.notes["outcomes"] = {m: dict(c) for m, c in outcome.items()}
    assert result.submitted == rounds * len(MODES)
    assert set(outcome["hang_once"]) == {"completed:-"}
    assert set(outcome["oversized_streamed"]) == {"failed:result_download_failed"}
    assert set(outcome["oversized_declared"]) == {"failed:result_download_failed"}
    assert set(outcome["not_an_image"]) == {"failed:result_invalid_image"}
