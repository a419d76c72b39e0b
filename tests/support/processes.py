"""`photobot …` in a child process: the one way tests start a real server command (serve, the simulators).

`photobot_env(...)` is the test's environment without any `PHOTOBOT_*` variable of its own (so the developer's
shell or `.env` cannot leak in), plus the given settings and a private bytecode cache (the environment sets
PYTHONDONTWRITEBYTECODE, so each child would otherwise compile every module again: ~6 s a start).

`async with photobot_server("serve", "--port", str(port), env=..., cwd=...) as server:` starts the command, waits
until `server.base_url + ready` answers, and stops it with SIGTERM afterwards; what the process wrote on stderr
is collected as it comes (`server.output()`, `await server.wait_for(text)`), so a test can read the log lines
and the pipe never fills up.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PHOTOBOT = Path(sys.executable).with_name("photobot")
PYCACHE = Path(tempfile.gettempdir()) / f"photobot-test-pycache-{os.getuid()}"


def photobot_env(**settings: str) -> dict[str, str]:
    """The environment for a child `photobot`: no PHOTOBOT_* from outside (PHOTOBOT_TEST_* kept), then `settings`
    (PHOTOBOT_ENV=test unless given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOBOT_") or k.startswith("PHOTOBOT_TEST_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(PYTHONPYCACHEPREFIX=str(PYCACHE), PHOTOBOT_ENV="test")
    env.update(settings)
    return env


@dataclass
class ServerProcess:
    base_url: str
    proc: asyncio.subprocess.Process
    _err: bytearray = field(default_factory=bytearray)
    _grew: asyncio.Event = field(default_factory=asyncio.Event)

    def output(self) -> str:
        """Everything the process wrote on stderr so far."""
        return self._err.decode(errors="replace")

    async def wait_for(self, text: str, timeout_s: float = 30.0) -> str:
        """Wait until `text` appears on stderr; return the output so far."""
        async with asyncio.timeout(timeout_s):
            while text not in self.output():
                self._grew.clear()
                if self.proc.returncode is not None:
                    raise AssertionError(f"process exited ({self.proc.returncode}) before {text!r}:\n{self.output()}")
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._grew.wait(), 0.5)
        return self.output()

    async def _drain(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self._err.extend(chunk)
            self._grew.set()


@asynccontextmanager
async def photobot_server(
    *args: str,
    env: dict[str, str],
    cwd: Path,
    port: int,
    ready: str = "/healthz",
    start_timeout_s: float = 90.0,
) -> AsyncIterator[ServerProcess]:
    """Run `photobot *args` (listening on 127.0.0.1:`port`) until the block ends; ready once `ready` answers."""
    proc = await asyncio.create_subprocess_exec(
        str(PHOTOBOT), *args, env=env, cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    server = ServerProcess(f"http://127.0.0.1:{port}", proc)
    drain = asyncio.create_task(server._drain())
    try:
        async with httpx.AsyncClient(timeout=2) as client, asyncio.timeout(start_timeout_s):
            while True:
                try:
                    if (await client.get(server.base_url + ready)).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if proc.returncode is not None:
                    raise AssertionError(f"photobot {args[0]} exited ({proc.returncode}):\n{server.output()}")
                await asyncio.sleep(0.1)
        yield server
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await asyncio.wait_for(drain, 5)
