"""What every benchmark shares: a throwaway PostgreSQL database, a flushed Redis DB, the service and the bare
baseline as uvicorn subprocesses, the load client in its own process, and psutil sampling.

Stores: PostgreSQL at postgresql://127.0.0.1:5432/test (a database `photobot_bench_*` is created per run and
dropped after) and Redis at redis://127.0.0.1:6379/14 (flushed before and after). Override with
PHOTOBOT_BENCH_PG_DSN / PHOTOBOT_BENCH_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN_DSN = os.environ.get("PHOTOBOT_BENCH_PG_DSN", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PHOTOBOT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SECRET = "bench-secret-key-" + "b" * 32
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine() -> dict[str, Any]:
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "event_loop": loop,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# --- stores -------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def throwaway_database() -> AsyncIterator[str]:
    """A migrated database created for this benchmark and dropped after; yields its SQLAlchemy URL."""
    from photobot.db.migrate import upgrade

    name = f"photobot_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def flush_redis() -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@dataclass
class Seeded:
    event_id: int
    kiosk: str
    admin: str


async def seed(url: str, credits: int = 1_000_000) -> Seeded:
    from photobot.db import Database
    from photobot.services import access, accounts, styles

    db = Database(url)
    try:
        async with db.session() as session:
            await styles.load_default_catalogue(session)
            event = await accounts.create_event(session, "Bench", credits)
            _, kiosk = await access.create_token(session, "event", event_id=event.id)
            _, admin = await access.create_token(session, "admin")
        assert event.id is not None
        return Seeded(event.id, kiosk, admin)
    finally:
        await db.close()


async def insert_jobs(
    url: str, event_id: int, count: int, *, state: str, far: bool = True, input_key: str = "inputs/bench.jpg"
) -> list[tuple[str, str]]:
    """Insert `count` jobs directly (with their reservation in the ledger); returns (job id, task id)."""
    from photobot.db import Database
    from photobot.db.models import CreditLedger, Event, Job, utcnow

    db = Database(url)
    now = utcnow()
    rows: list[tuple[str, str]] = []
    try:
        for start in range(0, count, 1000):
            async with db.session() as session:
                batch = min(1000, count - start)
                ledger = []
                for _ in range(batch):
                    task_id = uuid.uuid4().hex
                    job = Job(
                        event_id=event_id, style_id="pb_a", cost=1, provider="kie", model="nano-banana-pro",
                        prompt="bench", input_key=input_key, state=state,
                        provider_task_id=task_id if state == "waiting" else None,
                        next_attempt_at=now + (timedelta(days=1) if far else timedelta(0)),
                        deadline_at=now + timedelta(days=2), submitted_at=now if state == "waiting" else None,
                        output_format="png",
                    )  # fmt: skip
                    session.add(job)
                    ledger.append(CreditLedger(event_id=event_id, job_id=job.id, delta=-1, reason="reserve"))
                    rows.append((job.id, task_id))
                await session.flush()  # jobs before their ledger rows (foreign key)
                session.add_all(ledger)
                event = await session.get(Event, event_id)
                assert event is not None
                event.credits -= batch
    finally:
        await db.close()
    return rows


# --- processes ----------------------------------------------------------------------------------------------


def service_env(database_url: str, port: int, var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOBOT_")}
    env.update(
        PHOTOBOT_ENV="production",
        PHOTOBOT_DATABASE_URL=database_url,
        PHOTOBOT_REDIS_URL=REDIS_URL,
        PHOTOBOT_SECRET_KEY=SECRET,
        PHOTOBOT_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        PHOTOBOT_VAR_DIR=str(var_dir),
        PHOTOBOT_STORAGE_URL=f"file://{var_dir / 'media'}",
        PHOTOBOT_LOG_LEVEL="WARNING",
        PHOTOBOT_SUBMIT_RATE_LIMIT="100000000/minute",
        PHOTOBOT_CALLBACK_RATE_LIMIT="100000000/minute",
        # raised, not off: a duplicate still pays its per-job check (Redis), but is answered 200, not 429
        PHOTOBOT_CALLBACK_JOB_RATE_LIMIT="100000000/minute",
    )
    env.update(extra)
    return env


class Server:
    """A server subprocess (the service, a bare baseline or the simulator) on 127.0.0.1:port."""

    def __init__(self, args: list[str], env: dict[str, str], port: int, cwd: Path, name: str) -> None:
        self.port, self.name = port, name
        self.log = cwd / f"{name}.log"
        self.proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, path: str = "/healthz", timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=2).status_code < 500:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {path} within {timeout_s}s")

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> int:
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def pss(self) -> int:
        """Proportional set size of the process tree: shared pages (the libraries every spawned image process
        maps too) count once in total, not once per process as in `rss`."""
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_full_info().pss
        return total

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def photobot_serve(env: dict[str, str], port: int, cwd: Path, *, workers: int = 1, worker: bool = False) -> Server:
    args = [str(BIN / "photobot"), "serve", "--port", str(port), "--workers", str(workers)]
    if not worker:
        args.append("--no-worker")
    return Server(args, env, port, cwd, f"photobot-serve-{port}")


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def baseline_server(port: int, cwd: Path, database_url: str, *, workers: int = 1, pool: int = 32) -> Server:
    """The floors of bench/baseline.py under uvicorn, configured exactly like the service's server."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), BENCH_BASELINE_DSN=asyncpg_dsn(database_url),
               BENCH_BASELINE_DIR=str(cwd / "baseline-media"), BENCH_BASELINE_POOL=str(pool))  # fmt: skip
    args = [str(BIN / "uvicorn"), "bench.baseline:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    return Server(args, env, port, cwd, f"baseline-{port}")


def simulator(port: int, cwd: Path, **knobs: Any) -> Server:
    server = Server([str(BIN / "photobot"), "simulator", "--port", str(port)], dict(os.environ), port, cwd, "sim")
    server.wait_ready("/_sim/stats")
    if knobs:
        response = httpx.post(f"{server.url}/_sim/config", json=knobs, timeout=10)
        response.raise_for_status()
    return server


@contextlib.contextmanager
def workdir(name: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"photobot-bench-{name}-") as tmp:
        yield Path(tmp)


def settle_writeback() -> None:
    """Write back the page cache's dirty data now (sync(2)), before a measured run, so that every run starts
    with none and the kernel's background writeback of earlier runs' files cannot land inside it (see
    `bench/submit_ingest.py` for why that matters)."""
    os.sync()


def disk_written_bytes() -> int:
    """Bytes the block layer has been given to write since boot (/proc/vmstat `pgpgout`, in KiB, counted when the
    I/O is submitted; Linux only, 0 elsewhere). Around a run: PostgreSQL's WAL and some metadata (a few MB/s),
    plus any page-cache writeback that happened inside it."""
    with contextlib.suppress(OSError, StopIteration, ValueError), open("/proc/vmstat") as vmstat:
        return 1024 * int(next(line.split()[1] for line in vmstat if line.startswith("pgpgout ")))
    return 0


def ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 3) if baseline else None
