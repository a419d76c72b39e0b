"""The fault suite's harness: the real service on loopback, the simulator, private Redis / PostgreSQL servers.

`chaos_env(db, sim_config, ...)` serves `create_app` (web and, unless told otherwise, the dispatcher) on a free
port with a simulator, a seeded event and an SMTP server, and gives helpers to submit jobs, wait until they
are final and audit the outcome:

- submitted = completed + failed (every job final);
- `photobot.db.audit.audit` finds nothing (ledger balanced, failed jobs released, completed jobs settled);
- no e-mail recipient got two messages, no (job, channel) pair has two notification rows;
- every completed job's `result_key` exists in storage.

Servers we stop on purpose are our own: `OwnRedis` (a redis-server on a free port) and `OwnPostgres` (a
throwaway cluster made with initdb); the machine's shared Redis and PostgreSQL are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from starlette.applications import Starlette

from photobot.app import create_app
from photobot.db import Database
from photobot.db.audit import audit
from photobot.db.models import Job, JobTransition, Notification
from photobot.providers.simulator.config import SimConfig
from photobot.providers.simulator.runner import Simulator
from photobot.settings import Settings, load_settings
from photobot.storage import Storage, open_storage
from tests.chaos.report import SCENARIOS, ScenarioResult
from tests.support.images import jpeg
from tests.support.seed import seed
from tests.support.servers import free_port, serve
from tests.support.smtp import SMTPServer

SECRET = "chaos-secret-key-" + "y" * 32
FAST = {
    "callback_rate_limit": "1000000/minute",
    "submit_rate_limit": "1000000/minute",
    "poll_interval_s": 0.2,
    "reconcile_after_s": 2,
}


def sim_config(**knobs: Any) -> SimConfig:
    values: dict[str, Any] = {"callback_delay_s": 0.1, "long_side": 64, "rate_limit": 100_000}
    values.update(knobs)
    return SimConfig(**values)


def chaos_settings(var_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "var_dir": var_dir,
        "secret_key": SECRET,
        "allow_private_networks": True,
        "log_level": "WARNING",
        "provider": "simulator",
        **FAST,
    }
    values.update(overrides)
    return load_settings(env_file=None, **values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The PHOTOBOT_* environment that reproduces `settings` in a subprocess (`photobot worker`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOBOT_")}
    values = settings.model_dump()
    for name, value in values.items():
        if value is None or value == [] or name in ("old_secret_keys",):
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(v.get_secret_value() if hasattr(v, "get_secret_value") else str(v) for v in value)
        if isinstance(value, bool):
            value = "true" if value else "false"
        env[f"PHOTOBOT_{name.upper()}"] = str(getattr(value, "value", value))
    return env


# --- servers we own ----------------------------------------------------------------------------------


class OwnRedis:
    """A private redis-server on a free loopback port that a test may stop and restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            import pytest

            pytest.skip("redis-server is not installed")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


class OwnPostgres:
    """A throwaway PostgreSQL cluster (initdb) on a free port, which a test may stop and start."""

    class Unavailable(Exception):
        pass

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="photobot-pg-"))
        self.data = self.dir / "data"
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        self.bin = bins[-1].parent if bins else None
        self.as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, timeout=60)
        if done.returncode != 0:
            raise self.Unavailable(f"{Path(args[0]).name}: {done.stderr.decode()[-300:]}")

    async def init(self) -> None:
        if self.bin is None:
            raise self.Unavailable("no /usr/lib/postgresql/*/bin/initdb")
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
        await asyncio.to_thread(
            self._run, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        await self.start()

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        await asyncio.to_thread(
            self._run, str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.dir / "log"), "-w", "start",
        )  # fmt: skip

    async def stop(self) -> None:
        await asyncio.to_thread(self._run, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class ForkServer:
    """Starts `photobot worker` processes from one pre-imported parent (see forkserver.py)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("forkserver.py"))],
            env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip

    def spawn(self, log: Path) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"spawn {log}\n".encode())
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class WorkerProcess:
    """A `photobot worker` process; `kill9()` is the crash, `start()` the restart."""

    def __init__(self, server: ForkServer, cwd: Path, name: str) -> None:
        self.server, self.name = server, name
        self.pid: int | None = None
        self.log = cwd / f"{name}.log"
        self.log.touch()
        self.kills = 0
        self.starts = 0

    async def start(self) -> None:
        self.pid = await asyncio.to_thread(self.server.spawn, self.log)
        self.starts += 1

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until this incarnation logged "dispatcher started" (INFO logs)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log.read_text(errors="replace").count("dispatcher started") >= self.starts:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} did not start within {timeout_s}s")

    async def kill9(self) -> None:
        if self.pid is not None and _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
            while _alive(self.pid):
                await asyncio.sleep(0.01)
            self.kills += 1

    async def stop(self) -> None:
        if self.pid is None or not _alive(self.pid):
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _alive(self.pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)


# --- the service -------------------------------------------------------------------------------------


@dataclass
class ChaosEnv:
    base_url: str
    client: httpx.AsyncClient
    db: Database
    settings: Settings
    sim: Simulator
    app: Starlette
    event_id: int
    kiosk_token: str
    smtp: SMTPServer | None
    storage: Storage
    submitted: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.kiosk_token}"}

    async def post_job(self, index: int) -> httpx.Response:
        data = {"style": "pb_a"}
        if self.smtp is not None:
            data["email"] = f"guest{index}@example.com"
        return await self.client.post(
            "/v1/jobs", data=data, files={"image": ("guest.jpg", jpeg(color="teal"), "image/jpeg")}, headers=self.auth
        )

    async def submit(self, count: int, *, spacing_s: float = 0.0) -> list[str]:
        ids = []
        for _ in range(count):
            response = await self.post_job(len(self.submitted))
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
            self.submitted.append(ids[-1])
            if spacing_s:
                await asyncio.sleep(spacing_s)
        return ids

    async def states(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        wanted = list(ids if ids is not None else self.submitted)
        async with self.db.session() as session:
            rows = await session.execute(sa.select(Job.id, Job.state).where(Job.id.in_(wanted)))
            return dict(rows.all())  # type: ignore[arg-type]

    async def wait_final(self, timeout_s: float, ids: Iterable[str] | None = None) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                states = await self.states(ids)
            except Exception:  # the database may be the thing we broke
                states = {}
            if states and all(s in ("completed", "failed") for s in states.values()):
                return states
            if time.monotonic() > deadline:
                return states
            await asyncio.sleep(0.2)

    async def audit_all(self, name: str, *, timeout_s: float, expect: str | None = None) -> ScenarioResult:
        """Wait for every submitted job to be final, then check the invariants; records and asserts."""
        started = time.monotonic()
        states = await self.wait_final(timeout_s)
        self.notes["final_after_s"] = round(time.monotonic() - started, 1)
        counts = Counter(states.values())
        violations = list(await audit(self.db))
        not_final = {j: s for j, s in states.items() if s not in ("completed", "failed")}
        if len(states) != len(self.submitted):
            violations.append(f"{len(self.submitted) - len(states)} submitted jobs missing from the database")
        if not_final:
            left = dict(Counter(not_final.values()))
            violations.append(f"{len(not_final)} jobs not final after {timeout_s}s: {left}")
        async with self.db.session() as session:
            done = (
                await session.execute(sa.select(Job.id, Job.result_key).where(Job.id.in_(self.submitted),
                                                                              Job.state == "completed"))
            ).all()  # fmt: skip
        for job_id, key in done:
            if not key or not await self.storage.exists(key):
                violations.append(f"job {job_id}: result {key!r} missing from storage")
        if self.smtp is not None:
            await self._settle_notifications()
            recipients = Counter(str(m["To"]) for m in self.smtp.messages)
            twice = {r: n for r, n in recipients.items() if n > 1}
            if twice:
                violations.append(f"e-mail sent more than once: {twice}")
            self.notes["emails"] = len(self.smtp.messages)
            async with self.db.session() as session:
                by_state = sa.select(Notification.state, sa.func.count()).group_by(Notification.state)
                rows = await session.execute(by_state)
                self.notes["notifications"] = dict(rows.all())  # type: ignore[arg-type]
        if expect == "completed" and counts.get("failed"):
            violations.append(f"{counts['failed']} jobs failed where all should complete")
        result = ScenarioResult(
            name, len(self.submitted), counts.get("completed", 0), counts.get("failed", 0), violations, self.notes
        )
        SCENARIOS.append(result)
        assert not violations, f"{name}: " + "; ".join(violations[:10])
        assert result.submitted == result.completed + result.failed
        return result

    async def _settle_notifications(self, timeout_s: float = 10.0) -> None:
        """Give the notifier a moment to send what the finished jobs planned."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            async with self.db.session() as session:
                pending = (
                    await session.execute(
                        sa.select(sa.func.count())
                        .select_from(Notification)
                        .where(Notification.state.in_(["pending", "sending"]))
                    )
                ).scalar_one()
            if not pending:
                return
            await asyncio.sleep(0.2)

    async def timeline(self) -> dict[str, list[str]]:
        """Per job: its transitions with seconds since creation (to explain a slow or stuck scenario)."""
        async with self.db.session() as session:
            created = dict((await session.execute(sa.select(Job.id, Job.created_at))).all())  # type: ignore[arg-type]
            rows = (
                await session.execute(
                    sa.select(JobTransition.job_id, JobTransition.from_state, JobTransition.to_state,
                              JobTransition.note, JobTransition.at).order_by(JobTransition.id)
                )
            ).all()  # fmt: skip
        out: dict[str, list[str]] = {}
        for job_id, src, dst, note, at in rows:
            offset = (at - created[job_id]).total_seconds() if job_id in created else 0.0
            out.setdefault(job_id, []).append(f"{offset:6.1f}s {src}->{dst}{f' ({note})' if note else ''}")
        return out

    async def sim_stats(self) -> dict[str, Any]:
        return self.sim.stats.to_dict()


@asynccontextmanager
async def chaos_env(
    db: Database,
    tmp_path: Path,
    config: SimConfig | None = None,
    *,
    smtp: SMTPServer | None = None,
    run_dispatcher: bool = True,
    credits: int = 500,
    sim: Simulator | None = None,
    **overrides: Any,
) -> AsyncIterator[ChaosEnv]:
    seeded = await seed(db, credits=credits)
    async with contextlib.AsyncExitStack() as stack:
        if sim is None:
            sim = await stack.enter_async_context(Simulator(config or sim_config()))
        port = free_port()
        values: dict[str, Any] = {
            "database_url": db.url,
            "public_base_url": f"http://127.0.0.1:{port}",
            "kie_base_url": sim.url,
            "kie_upload_base_url": sim.url,
            "storage_url": f"file://{tmp_path / 'media'}",
        }
        if smtp is not None:
            values["smtp_url"] = smtp.url
        values.update(overrides)
        settings = chaos_settings(tmp_path / "var", **values)
        app = create_app(settings, run_dispatcher=run_dispatcher)
        base_url = await stack.enter_async_context(serve(app, port=port))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=30))
        storage = open_storage(
            settings.resolved_storage_url, public_base_url=settings.public_base_url, secrets=settings.secret_keys()
        )
        stack.push_async_callback(storage.close)
        yield ChaosEnv(base_url, client, db, settings, sim, app, seeded["event_id"], seeded["kiosk"], smtp, storage)


def scale(full: bool, short: int, long: int) -> int:
    return long if full else short
