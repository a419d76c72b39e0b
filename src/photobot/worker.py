"""A worker: the dispatcher, the notifier, the webhook sender and the payment reconciler, as background tasks of one
process.

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
from photobot.outbound.sender import WebhookSender
from photobot.payments.gateway import Payments
from photobot.payments.reconcile import Reconciler
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
    async def running(
        cls, runtime: Runtime, providers: Providers, *, payments: Payments | None = None, grace_s: float = 10.0
    ) -> AsyncIterator[Worker]:
        async with contextlib.AsyncExitStack() as stack:
            if payments is None:  # a worker of its own: reconcile against the configured API (no simulator here)
                payments = await stack.enter_async_context(Payments.open(runtime, start_simulator=False))
            async with cls._running(runtime, providers, payments, grace_s) as worker:
                yield worker

    @classmethod
    @asynccontextmanager
    async def _running(
        cls, runtime: Runtime, providers: Providers, payments: Payments, grace_s: float
    ) -> AsyncIterator[Worker]:
        stop = asyncio.Event()
        runtime.images.warm_up()  # the submit step cleans uploads in these processes
        dispatcher = Dispatcher(runtime, providers)
        notifier = Notifier(runtime.db, runtime.settings, runtime.storage, on_result=metrics.notification_result)
        webhooks = WebhookSender.for_runtime(runtime)
        tasks = [
            asyncio.create_task(dispatcher.run_forever(), name="dispatcher"),
            asyncio.create_task(notifier.run_forever(stop, runtime.bus.notify_event), name="notifier"),
            asyncio.create_task(webhooks.run_forever(stop, runtime.bus.webhook_event), name="webhooks"),
            asyncio.create_task(run_retention(runtime, stop), name="retention"),
            asyncio.create_task(Reconciler(runtime, payments).run_forever(stop), name="payments"),
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
            await webhooks.aclose()
