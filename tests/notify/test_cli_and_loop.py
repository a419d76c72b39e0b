"""`photobot jobs resend` (the click command) and the worker loop `run_forever`."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from photobot.cli.jobs import resend_command
from photobot.notify import Notifier
from tests.support.images import png
from tests.support.seed import finish_job, make_event, make_job


async def test_resend_command_queues_a_sent_channel_again(
    notify_sqlite, notify_smtp, notify_settings, notify_storage, monkeypatch
):
    settings = notify_settings(smtp_url=notify_smtp.url)
    job = await make_job(notify_sqlite, await make_event(notify_sqlite), email="guest@example.com")
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
    await finish_job(notify_sqlite, job.id, settings)
    notifier = Notifier(notify_sqlite, settings, notify_storage)
    await notifier.run_due()
    assert len(notify_smtp.messages) == 1

    monkeypatch.setenv("PHOTOBOT_DATABASE_URL", notify_sqlite.url)
    monkeypatch.setenv("PHOTOBOT_SMTP_URL", notify_smtp.url)
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, resend_command, [job.id, "--channel", "email", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"job_id": job.id, "channel": "email", "state": "pending"}

    await notifier.run_due()
    assert len(notify_smtp.messages) == 2

    missing = await asyncio.to_thread(runner.invoke, resend_command, [job.id, "--channel", "whatsapp"])
    assert missing.exit_code == 1
    assert "has no whatsapp notification" in missing.output


async def test_run_forever_sends_on_wake_and_stops(notify_sqlite, notify_settings, notify_storage, http_capture):
    settings = notify_settings(poll_interval_s=30)  # only the wake-up can make it send quickly
    event = await make_event(notify_sqlite, notify_urls=[f"json://127.0.0.1:{http_capture.port}/k"])
    stop, wake = asyncio.Event(), asyncio.Event()
    notifier = Notifier(notify_sqlite, settings, notify_storage)
    worker = asyncio.create_task(notifier.run_forever(stop, wake))
    try:
        for _ in range(3):
            job = await make_job(notify_sqlite, event)
            notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
            before = len(http_capture.requests)
            await finish_job(notify_sqlite, job.id, settings)
            wake.set()
            for _ in range(100):
                if len(http_capture.requests) > before:
                    break
                await asyncio.sleep(0.02)
            assert len(http_capture.requests) == before + 1
    finally:
        stop.set()
        await asyncio.wait_for(worker, 2)
