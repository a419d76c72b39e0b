"""A worker: the dispatcher plus the notifier, as background tasks of one process.

`photobot serve` runs it inside the web process (the embedded default); `photobot worker` runs it alone so
web and workers scale apart. Both use `Worker.running(runtime)`, which starts everything and, on exit,
stops claiming, lets running steps finish for a grace period and releases leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from photobot import metrics
from photobot.jobs.dispatcher import Dispatcher
from photobot.jobs.retention import run_retention
from photobot.notify import Notifier
from photobot.providers.assembly import Providers
from photobot.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class Worker:
    dispatcher: Dispatcher
    notifier: Notifier
    providers: Providers

    @classmethod
    @asynccontextmanager
    async def running(cls, runtime: Runtime, providers: Providers, *, grace_s: float = 10.0) -> AsyncIterator[Worker]:
        stop = asyncio.Event()
        dispatcher = Dispatcher(runtime, providers)
        notifier = Notifier(runtime.db, runtime.settings, runtime.storage, on_result=metrics.notification_result)
        tasks = [
            asyncio.create_task(dispatcher.run_forever(), name="dispatcher"),
            asyncio.create_task(notifier.run_forever(stop, runtime.bus.notify_event), name="notifier"),
            asyncio.create_task(run_retention(runtime, stop), name="retention"),
        ]
        stop_exporter = metrics.start_exporter(runtime.settings.worker_metrics_port)
        try:
            yield cls(dispatcher, notifier, providers)
        finally:
            stop_exporter()
            stop.set()
            await dispatcher.stop(grace_s)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)
