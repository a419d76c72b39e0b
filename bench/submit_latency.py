"""Submission latency: `POST /v1/jobs` with a 1 MB JPEG against a bare Starlette endpoint that only reads the body.

    .venv/bin/python -m bench.submit_latency [--requests 200] [--concurrency 16]

What it does, all on loopback and bounded in count and time:
1. creates a throwaway PostgreSQL database (dropped again at the end), migrates it, and seeds the default styles,
   an event with enough credits and a kiosk token (directly through the service layer);
2. starts `photobot serve --no-worker` in a separate process (PHOTOBOT_* environment, one uvicorn worker, a
   generous rate limit so the limiter never refuses) and, the same way, a bare Starlette app under uvicorn whose
   endpoint reads the whole body and answers 202;
3. sends the same multipart body (a real ~1 MB noise JPEG) N times at C concurrent connections to each, after a
   short warm-up, and prints p50 / p90 / p99 latency, requests per second, the ratios to the baseline, and the
   server settings that shape the result.

PostgreSQL: PHOTOBOT_TEST_PG_DSN (default postgresql://127.0.0.1:5432/test) is the admin connection used to
create and drop the database.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN_DSN = os.environ.get("PHOTOBOT_TEST_PG_DSN", "postgresql://127.0.0.1:5432/test")
BOUNDARY = "photobot-bench-boundary"
TOTAL_TIME_LIMIT_S = 600


# --- the baseline: the same server, the same body, none of our work ---------------------------------
async def _read_body(request: Request) -> JSONResponse:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return JSONResponse({"received": size}, status_code=202)


baseline_app = Starlette(routes=[Route("/v1/jobs", _read_body, methods=["POST"])])


# --- set-up -------------------------------------------------------------------------------------------
def noise_jpeg(target_bytes: int) -> bytes:
    """A real JPEG of about `target_bytes`: random noise does not compress, so size tracks pixel count."""
    side = 300
    while True:
        img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        if buf.tell() >= target_bytes:
            return buf.getvalue()
        side = int(side * 1.08) + 1


def multipart_body(image: bytes, style: str) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="style"\r\n\r\n{style}\r\n'.encode(),
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="guest.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode(),
        image,
        f"\r\n--{BOUNDARY}--\r\n".encode(),
    ]
    return b"".join(parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def create_database() -> tuple[str, str]:
    name = f"photobot_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def seed(url: str, credits: int) -> str:
    from photobot.db import Database
    from photobot.services import access, accounts, styles

    db = Database(url)
    try:
        async with db.session() as session:
            await styles.load_default_catalogue(session)
            event = await accounts.create_event(session, "Benchmark", credits)
            _, token = await access.create_token(session, "event", event_id=event.id, label="bench")
    finally:
        await db.close()
    return token


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start(name: str, argv: Sequence[str], env: dict[str, str], port: int, log: Path) -> Server:
    handle = log.open("wb")
    process = subprocess.Popen(list(argv), cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    return Server(name, process, f"http://127.0.0.1:{port}", log)


async def wait_ready(server: Server, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-2000:]}")
            try:
                await client.get(server.base_url + path)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise RuntimeError(f"{server.name} did not start within {timeout} s")


# --- load -------------------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    latencies: list[float]
    wall_s: float
    statuses: dict[int, int]

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall_s


async def load(name: str, base_url: str, body: bytes, token: str, *, requests: int, concurrency: int) -> Result:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        for _ in range(min(8, requests)):  # warm-up: connections, caches, first-call imports
            await client.post("/v1/jobs", content=body, headers=headers)
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await client.post("/v1/jobs", content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), TOTAL_TIME_LIMIT_S / 2)
        wall = time.perf_counter() - started
    return Result(name, latencies, wall, statuses)


def report(results: list[Result], settings: dict[str, object]) -> None:
    print("\nserver settings:")
    for key, value in settings.items():
        print(f"  {key:<28} {value}")
    print(f"\n{'target':<22}{'n':>6}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'req/s':>9}  statuses")
    for r in results:
        print(
            f"{r.name:<22}{len(r.latencies):>6}{r.pct(0.5) * 1000:>10.1f}{r.pct(0.9) * 1000:>10.1f}"
            f"{r.pct(0.99) * 1000:>10.1f}{statistics.fmean(r.latencies) * 1000:>10.1f}{r.rps:>9.1f}  {r.statuses}"
        )
    photobot, baseline = results
    print(
        f"\nratio to baseline: p50 x{photobot.pct(0.5) / baseline.pct(0.5):.1f}, "
        f"p99 x{photobot.pct(0.99) / baseline.pct(0.99):.1f}, "
        f"throughput {photobot.rps / baseline.rps:.2f} of baseline"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--image-kb", type=int, default=1024)
    args = parser.parse_args()
    requests = max(1, min(args.requests, 5000))
    concurrency = max(1, min(args.concurrency, 128))

    image = noise_jpeg(args.image_kb * 1024)
    with Image.open(io.BytesIO(image)) as img:
        image_desc = f"{len(image) / 1024:.0f} KiB JPEG, {img.width}x{img.height} noise"
    body = multipart_body(image, "pb_a")
    work = Path(tempfile.mkdtemp(prefix="photobot-bench-"))
    db_name, db_url = await create_database()
    servers: list[Server] = []
    try:
        from photobot.db.migrate import upgrade

        await asyncio.to_thread(upgrade, db_url)
        token = await seed(db_url, credits=requests + 100)

        app_port, base_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOBOT_")}
        env.update(
            PHOTOBOT_DATABASE_URL=db_url,
            PHOTOBOT_VAR_DIR=str(work / "var"),
            PHOTOBOT_SECRET_KEY=secrets.token_urlsafe(48),
            PHOTOBOT_PUBLIC_BASE_URL=f"http://127.0.0.1:{app_port}",
            PHOTOBOT_SUBMIT_RATE_LIMIT="1000000/minute",
            PHOTOBOT_LOG_LEVEL="WARNING",
            PHOTOBOT_PROVIDER="kie",  # never called: no dispatcher runs; this only avoids an in-process simulator
            PHOTOBOT_KIE_API_KEYS="bench-key-never-used",
        )
        servers.append(
            start(
                "photobot",
                [str(BIN / "photobot"), "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(app_port)],
                env,
                app_port,
                work / "photobot.log",
            )
        )
        servers.append(
            start(
                "baseline",
                [str(BIN / "python"), "-m", "uvicorn", "bench.submit_latency:baseline_app", "--host", "127.0.0.1",
                 "--port", str(base_port), "--log-level", "warning"],
                env,
                base_port,
                work / "baseline.log",
            )
        )  # fmt: skip
        await wait_ready(servers[0], "/healthz")
        await wait_ready(servers[1], "/")

        results = [
            await load("photobot POST /v1/jobs", servers[0].base_url, body, token, requests=requests,
                       concurrency=concurrency),
            await load("baseline (read body)", servers[1].base_url, body, token, requests=requests,
                       concurrency=concurrency),
        ]  # fmt: skip

        from photobot.intake import ImageProcessor
        from photobot.settings import load_settings

        settings = load_settings(env_file=None, database_url=db_url, var_dir=work / "var")
        processor = ImageProcessor.from_settings(settings)
        report(
            results,
            {
                "requests x concurrency": f"{requests} x {concurrency} (+ warm-up)",
                "body": f"{len(body) / 1024:.0f} KiB multipart ({image_desc})",
                "database": "PostgreSQL (throwaway database), pool 10 + 20 overflow",
                "storage": "local directory (file://)",
                "uvicorn": "1 worker, `photobot serve --no-worker`; baseline: same uvicorn, bare Starlette",
                "image processing threads": processor.concurrency,
                "max_image_bytes": settings.max_image_bytes,
                "max_long_side": settings.max_long_side,
                "rate limit": "memory, 1000000/minute (never refuses)",
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
            },
        )
        bad = {s: n for r in results for s, n in r.statuses.items() if s != 202}
        return 1 if bad else 0
    finally:
        for server in servers:
            server.stop()
        await drop_database(db_name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
