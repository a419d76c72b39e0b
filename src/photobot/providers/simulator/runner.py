"""Run a Starlette app on a real socket: in-process inside a running loop (tests, `photobot serve`), or alone.

`start_server` binds the socket itself (port 0 picks a free port, known before the first request) and runs
uvicorn as a task of the current loop without touching signal handlers, so it can live inside pytest or the
main app. `Simulator` wraps the simulator app with it:

    async with Simulator(SimConfig(callback_delay_s=0.2)) as sim:
        settings = Settings(kie_base_url=sim.url, kie_upload_base_url=sim.url, ...)
        sim.config.failure_rate = 0.5   # or POST {sim.url}/_sim/config from another process
        print(sim.stats.to_dict())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import uvicorn

from photobot.providers.simulator.app import create_app
from photobot.providers.simulator.config import SimConfig
from photobot.providers.simulator.state import SimState, Stats


class _InProcessServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the host process owns the signals
        yield

    def _log_started_message(self, listeners: Any) -> None:
        """Not uvicorn's "Uvicorn running on …": that line belongs to the host process's own server."""


class RunningServer:
    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], host: str, port: int) -> None:
        self.server, self.task, self.host, self.port = server, task, host, port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, timeout=10)


async def start_server(app: Any, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve `app` on host:port (0: a free port) as a task of the running loop; returns once it accepts."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # log_config=None and log_level=None: a server started inside another process must not re-run uvicorn's
    # logging set-up, which would replace the host's handlers and levels (its access log and its "listening on").
    # access_log=False keeps this server's requests out of the log, but uvicorn also empties the shared
    # "uvicorn.access" logger's handlers for it: put the host's back.
    access = logging.getLogger("uvicorn.access")
    handlers, propagate = list(access.handlers), access.propagate
    config = uvicorn.Config(
        app, log_config=None, log_level=None, access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    access.handlers[:], access.propagate = handlers, propagate
    server = _InProcessServer(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            sock.close()
            task.result()
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.005)
    return RunningServer(server, task, host, sock.getsockname()[1])


class Simulator:
    """The simulator app and its in-process server; use as `async with Simulator(config) as sim`."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.state = SimState(config or SimConfig())
        self.app = create_app(state=self.state)
        self._running: RunningServer | None = None

    @property
    def config(self) -> SimConfig:
        return self.state.config

    @property
    def stats(self) -> Stats:
        return self.state.stats

    @property
    def url(self) -> str:
        if self._running is None:
            raise RuntimeError("simulator is not running")
        return self._running.url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        self._running = await start_server(self.app, host, port)
        self.state.base_url = self._running.url
        return self

    async def stop(self) -> None:
        if self._running is not None:
            await self._running.stop()
            self._running = None

    async def __aenter__(self) -> Simulator:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def run_standalone(config: SimConfig, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Blocking: serve the simulator until Ctrl-C (the `photobot simulator` command)."""
    state = SimState(config)
    state.base_url = config.result_host or f"http://{host}:{port}"
    uvicorn.run(create_app(state=state), host=host, port=port, log_level="info", access_log=False)
