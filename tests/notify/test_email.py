"""Email through a real SMTP server (aiosmtpd): content, exactly-once, retries, resend."""

from __future__ import annotations

import asyncio
import logging

import pytest
import sqlalchemy as sa

from photobot.db.models import Job, JobState, Notification
from photobot.notify import Notifier, resend_notification
from tests.support.images import png
from tests.support.seed import finish_job, make_event, make_job

GUEST = "guest.person@example.com"


async def _rows(db, job_id):
    async with db.session() as session:
        result = await session.execute(sa.select(Notification).where(Notification.job_id == job_id))
        return list(result.scalars())


async def test_email_carries_subject_link_and_the_stored_photo(notify_db, notify_smtp, notify_settings, notify_storage):
    settings = notify_settings(smtp_url=notify_smtp.url)
    event = await make_event(notify_db, title="Gala Night", primary_color="#ff0066", footer_text="Thanks for coming")
    job = await make_job(notify_db, event, email=GUEST)
    image = png((8, 8), (200, 30, 90))
    notify_storage.put(f"results/{job.id}.png", image)
    await finish_job(notify_db, job.id, settings)

    notifier = Notifier(notify_db, settings, notify_storage)
    assert await notifier.run_due() == 1

    assert len(notify_smtp.envelopes) == 1
    assert notify_smtp.envelopes[0].rcpt_tos == [GUEST]
    message = notify_smtp.messages[0]
    assert message["Subject"] == "Your photo from Gala Night is ready"
    page = f"https://booth.example.com/p/{job.public_id}"
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert page in html and page in text
    assert "#ff0066" in html and "Thanks for coming" in html
    attachments = [p for p in message.walk() if p.get_filename()]
    assert [a.get_filename() for a in attachments] == ["photo.png"]
    assert attachments[0].get_payload(decode=True) == image

    (row,) = await _rows(notify_db, job.id)
    assert (row.channel, row.state, row.attempts, row.last_error) == ("email", "sent", 1, None)
    assert row.sent_at is not None


async def test_ten_duplicate_finishes_send_one_email(notify_db, notify_smtp, notify_settings, notify_storage):
    settings = notify_settings(smtp_url=notify_smtp.url)
    event = await make_event(notify_db)
    job = await make_job(notify_db, event, email=GUEST)
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))

    created = await asyncio.gather(*(finish_job(notify_db, job.id, settings) for _ in range(10)))
    assert sum(len(c) for c in created) == 1

    notifier = Notifier(notify_db, settings, notify_storage)
    await notifier.run_due()
    # finishing again after the send creates nothing and sends nothing
    for _ in range(3):
        assert await finish_job(notify_db, job.id, settings) == []
        await notifier.run_due()
    assert len(notify_smtp.messages) == 1
    assert [r.state for r in await _rows(notify_db, job.id)] == ["sent"]


async def test_smtp_down_retries_then_fails_and_the_job_stays_completed(
    notify_db, dead_smtp_url, notify_settings, notify_storage
):
    settings = notify_settings(smtp_url=dead_smtp_url)
    event = await make_event(notify_db)
    job = await make_job(notify_db, event, email=GUEST)
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
    await finish_job(notify_db, job.id, settings)
    outcomes: list[tuple[str, str]] = []
    notifier = Notifier(
        notify_db, settings, notify_storage, lambda *o: outcomes.append(o), max_attempts=3, base_backoff_s=0.01
    )

    for _ in range(40):
        await notifier.run_due()
        (row,) = await _rows(notify_db, job.id)
        if row.state == "failed":
            break
        assert row.state == "pending"  # between attempts, with a backoff
        await asyncio.sleep(0.03)

    assert row.state == "failed" and row.attempts == 3
    assert "Connection error" in row.last_error
    assert GUEST not in row.last_error
    assert outcomes == [("email", "retry"), ("email", "retry"), ("email", "failed")]
    async with notify_db.session() as session:
        assert (await session.get(Job, job.id)).state == JobState.completed
    assert await notifier.run_due() == 0  # a failed row stays failed


async def test_resend_sends_a_delivered_email_again(notify_sqlite, notify_smtp, notify_settings, notify_storage):
    settings = notify_settings(smtp_url=notify_smtp.url)
    job = await make_job(notify_sqlite, await make_event(notify_sqlite), email=GUEST)
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
    await finish_job(notify_sqlite, job.id, settings)
    notifier = Notifier(notify_sqlite, settings, notify_storage)
    await notifier.run_due()
    await notifier.run_due()
    assert len(notify_smtp.messages) == 1

    row = await notifier.resend(job.id, "email")
    assert row.state == "pending"
    await notifier.run_due()
    assert len(notify_smtp.messages) == 2
    (row,) = await _rows(notify_sqlite, job.id)
    assert row.state == "sent"

    # by public id as well, and unknown channels/jobs are reported
    await resend_notification(notify_sqlite, job.public_id, "email")
    from photobot.notify import NotificationNotFound

    with pytest.raises(NotificationNotFound):
        await resend_notification(notify_sqlite, job.id, "whatsapp", settings=settings)
    with pytest.raises(NotificationNotFound):
        await resend_notification(notify_sqlite, "nope", "email")


async def test_resend_plans_a_channel_configured_after_the_job_finished(
    notify_sqlite, notify_smtp, notify_settings, notify_storage
):
    job = await make_job(notify_sqlite, await make_event(notify_sqlite), email=GUEST)
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
    assert await finish_job(notify_sqlite, job.id, notify_settings()) == []  # no SMTP configured yet
    settings = notify_settings(smtp_url=notify_smtp.url)
    await resend_notification(notify_sqlite, job.id, "email", settings=settings)
    await Notifier(notify_sqlite, settings, notify_storage).run_due()
    assert len(notify_smtp.messages) == 1


async def test_failures_never_raise_into_the_caller(notify_sqlite, notify_smtp, notify_settings, notify_storage):
    settings = notify_settings(smtp_url=notify_smtp.url)
    event = await make_event(notify_sqlite)
    job = await make_job(notify_sqlite, event, email=GUEST)
    # planning for a job the database does not know fails inside a savepoint; the caller's work still commits
    ghost = Job.model_validate(job.model_dump() | {"id": "0" * 32})
    async with notify_sqlite.session() as session:
        from photobot.notify import plan_notifications

        assert await plan_notifications(session, ghost, event, settings) == []
        row = await session.get(Job, job.id)
        row.error_message = "still writable"
        session.add(row)
    async with notify_sqlite.session() as session:
        assert (await session.get(Job, job.id)).error_message == "still writable"

    # storage down: the send fails, run_due returns normally, the row waits for a retry
    await finish_job(notify_sqlite, job.id, settings)
    notify_storage.fail_downloads = True
    notifier = Notifier(notify_sqlite, settings, notify_storage, base_backoff_s=0.01)
    assert await notifier.run_due() == 1
    (row,) = await _rows(notify_sqlite, job.id)
    assert row.state == "pending" and "storage unavailable" in row.last_error

    # a broken metrics callback and a closed database do not raise either
    notify_storage.fail_downloads = False
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
    await asyncio.sleep(0.03)
    broken = Notifier(notify_sqlite, settings, notify_storage, lambda *_: 1 / 0)
    assert await broken.run_due() == 1
    assert len(notify_smtp.messages) == 1


async def test_a_hanging_smtp_server_does_not_block_the_loop(notify_sqlite, notify_settings, notify_storage):
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # accept, never greet

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = notify_settings(smtp_url=f"mailto://127.0.0.1:{port}?from=booth@photobot.test&mode=insecure&cto=1&rto=1")
    job = await make_job(notify_sqlite, await make_event(notify_sqlite), email=GUEST)
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
    await finish_job(notify_sqlite, job.id, settings)
    notifier = Notifier(notify_sqlite, settings, notify_storage, send_timeout_s=0.5, base_backoff_s=0.01)

    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    loop = asyncio.get_running_loop()
    started = loop.time()
    await notifier.run_due()
    elapsed = loop.time() - started
    beat.cancel()
    server.close()
    assert elapsed < 3
    assert ticks >= 5  # the loop kept running while the send waited
    (row,) = await _rows(notify_sqlite, job.id)
    assert row.state == "pending" and row.last_error


async def test_no_guest_address_in_any_log_line(notify_sqlite, notify_smtp, notify_settings, notify_storage, caplog):
    caplog.set_level(logging.DEBUG)
    settings = notify_settings(smtp_url=notify_smtp.url)
    job = await make_job(notify_sqlite, await make_event(notify_sqlite), email=GUEST)
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
    await finish_job(notify_sqlite, job.id, settings)
    await Notifier(notify_sqlite, settings, notify_storage).run_due()
    assert len(notify_smtp.messages) == 1
    ours = [r for r in caplog.records if r.name.startswith(("photobot", "apprise"))]
    assert any(r.name == "apprise" for r in ours)
    for record in ours:
        line = record.getMessage() + " " + repr(record.__dict__)
        assert GUEST not in line
    assert any(getattr(r, "target", None) == "g***@e***.com" for r in ours)
