"""`photobot worker`: the dispatcher, notifier and webhook sender alone, without the web app (scale them apart)."""

from __future__ import annotations

import asyncio
import signal

import click

from photobot.cli.common import settings_from_env
from photobot.logs import configure_logging
from photobot.providers.assembly import Providers
from photobot.runtime import Runtime
from photobot.settings import Settings
from photobot.worker import Worker


async def run_worker(settings: Settings, *, grace_s: float = 20.0) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with (
        Runtime.open(settings) as runtime,
        Providers.open(runtime) as providers,
        Worker.running(runtime, providers, grace_s=grace_s),
    ):
        await stop.wait()
        runtime.draining = True


@click.command(
    "worker", help="Run the dispatcher, notifier and webhook sender (no web); SIGTERM finishes or releases leases."
)
@click.option("--grace", type=float, default=20.0, show_default=True, help="Seconds to let running steps finish.")
def worker(grace: float) -> None:
    settings = settings_from_env()
    configure_logging(settings)
    asyncio.run(run_worker(settings, grace_s=grace))


command = worker
