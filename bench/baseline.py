"""The floors: minimal Starlette + asyncpg endpoints doing only the work each path must do, served by uvicorn
exactly like the service (same worker count, event loop and log level).

- `POST /webhooks/kie?job=ID`: read and parse the body, then ONE statement: record the event (unique per
  provider, task and outcome) and move the job to `finishing` if it is waiting. No token, no signature, no
  rate limit, no history row.
- `POST /v1/jobs`: parse the multipart body, write the photo to a file, ONE INSERT of the job row. No token, no
  image checks, no credit.
- `POST /bare/...`: read the body and answer (bare Starlette, for reference).

Settings from the environment: BENCH_BASELINE_DSN (asyncpg DSN), BENCH_BASELINE_DIR (where photos go),
BENCH_BASELINE_POOL (connections, default 32).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

OK_BODY = {"code": 200, "msg": "success"}
CALLBACK_SQL = """
WITH ev AS (
    INSERT INTO webhook_events (provider, task_id, outcome, job_id, received_at, payload)
    VALUES ('kie', $2, $3, $1, now(), '{}') ON CONFLICT (provider, task_id, outcome) DO NOTHING RETURNING id
)
UPDATE jobs SET state = 'finishing', state_changed_at = now(), updated_at = now(), next_attempt_at = now(),
       result_urls = $4::json
FROM ev WHERE jobs.id = $1 AND jobs.state IN ('submitting', 'waiting') RETURNING jobs.id
"""
INSERT_SQL = """
INSERT INTO jobs (id, public_id, event_id, style_id, cost, provider, model, prompt, input_key, reference_keys,
                  provider_meta, state, attempts, crashes, deadline_at, result_urls, created_at, updated_at,
                  next_attempt_at)
VALUES ($1, $2, $3, $4, 1, 'kie', 'nano-banana-pro', 'bench', $5, '[]', '{}', 'pending', 0, 0, $6, '[]', $7, $7, $7)
"""
_pool: asyncpg.Pool | None = None
MEDIA = Path(os.environ.get("BENCH_BASELINE_DIR", "var/baseline-media"))


def pool() -> asyncpg.Pool:
    assert _pool is not None
    return _pool


async def callback(request: Request) -> Response:
    data = json.loads(await request.body())["data"]
    result = json.loads(data["resultJson"])["resultUrls"] if data.get("resultJson") else []
    outcome = "success" if data["state"] == "success" else "fail"
    await pool().fetchval(CALLBACK_SQL, request.query_params["job"], data["taskId"], outcome, json.dumps(result))
    return JSONResponse(OK_BODY)


async def submission(request: Request) -> Response:
    async with request.form() as form:
        image = form["image"]
        assert isinstance(image, UploadFile)
        job_id = uuid.uuid4().hex
        key = f"inputs/{job_id}.jpg"
        with (MEDIA / key).open("wb") as out:
            while chunk := await image.read(64 * 1024):
                out.write(chunk)
        now = datetime.now(UTC)
        await pool().execute(
            INSERT_SQL, job_id, uuid.uuid4().hex, int(request.query_params.get("event", "1")),
            str(form.get("style", "pb_a")), key, now + timedelta(days=1), now,
        )  # fmt: skip
    return JSONResponse({"id": job_id, "status": "pending"}, status_code=202)


async def bare(request: Request) -> Response:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return JSONResponse({**OK_BODY, "bytes": size}, status_code=202 if "jobs" in request.url.path else 200)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global _pool
    (MEDIA / "inputs").mkdir(parents=True, exist_ok=True)
    size = int(os.environ.get("BENCH_BASELINE_POOL", "32"))
    dsn = os.environ.get("BENCH_BASELINE_DSN")
    _pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size) if dsn else None
    try:
        yield
    finally:
        if _pool is not None:
            await _pool.close()


app = Starlette(
    routes=[
        Route("/webhooks/kie", callback, methods=["POST"]),
        Route("/v1/jobs", submission, methods=["POST"]),
        Route("/bare/webhooks/kie", bare, methods=["POST"]),
        Route("/bare/v1/jobs", bare, methods=["POST"]),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
