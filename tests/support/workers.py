"""`photobot worker` as a real child process, configured through the environment only, that a test may SIGKILL.

    async with worker_process(env.settings, tmp_path / "w1.log") as worker:
        await worker.ready()
        ...
        await worker.kill9()

`settings_env(settings)` is the `PHOTOBOT_*` environment that reproduces a test's settings in a child process (the
served app's database, storage directory, public address and simulator, so the child works on the same jobs).
Children share a private bytecode cache so each start costs seconds, not a recompilation of every module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from photobot.settings import Settings

PHOTOBOT = Path(sys.executable).with_name("photobot")
PYCACHE = Path(tempfile.gettempdir()) / f"photobot-test-pycache-{os.getuid()}"


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a child process with these settings (secrets unwrapped, lists comma-joined)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOBOT_") or k.startswith("PHOTOBOT_TEST_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    for name, value in settings.model_dump().items():
        if value is None or value == [] or name == "old_secret_keys":
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(v.get_secret_value() if hasattr(v, "get_secret_value") else str(v) for v in value)
        if isinstance(value, bool):
            value = "true" if value else "false"
        env[f"PHOTOBOT_{name.upper()}"] = str(getattr(value, "value", value))
    env.update(extra)
    return env


@dataclass
class WorkerProcess:
    proc: asyncio.subprocess.Process
    log: Path

    async def ready(self, timeout_s: float = 90.0) -> None:
        """Until the worker logged that its dispatcher started (its loops run from then on)."""
        deadline = time.monotonic() + timeout_s
        while "dispatcher started" not in self.log.read_text(errors="replace"):
            assert self.proc.returncode is None, f"worker exited:\n{self.log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"worker not ready after {timeout_s}s:\n{self.log.read_text()[-2000:]}"
            await asyncio.sleep(0.05)

    async def kill9(self) -> None:
        """The crash: no shutdown code runs, leases and half-done sends stay as they are."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                await self.kill9()


@asynccontextmanager
async def worker_process(settings: Settings, log: Path, **extra_env: str) -> AsyncIterator[WorkerProcess]:
    env = settings_env(settings, PHOTOBOT_LOG_LEVEL="INFO", PHOTOBOT_LOG_FORMAT="json", **extra_env)
    handle = log.open("wb")
    proc = await asyncio.create_subprocess_exec(
        str(PHOTOBOT), "worker", "--grace", "1", env=env, cwd=log.parent, stdin=asyncio.subprocess.DEVNULL,
        stdout=handle, stderr=handle,
    )  # fmt: skip
    worker = WorkerProcess(proc, log)
    try:
        yield worker
    finally:
        with contextlib.suppress(ProcessLookupError):
            await worker.stop()
        handle.close()
