"""Push and integrations: the event's extra Apprise URLs, here json:// to a local kiosk receiver."""

from __future__ import annotations

import base64

import sqlalchemy as sa

from photobot.db.models import Notification
from photobot.notify import Notifier
from tests.support.images import png
from tests.support.seed import finish_job, make_event, make_job


async def test_json_push_carries_the_link_and_the_photo(notify_sqlite, notify_settings, notify_storage, http_capture):
    settings = notify_settings()
    url = f"json://127.0.0.1:{http_capture.port}/kiosk"
    event = await make_event(notify_sqlite, title="Gala Night", notify_urls=[url])
    job = await make_job(notify_sqlite, event)
    image = png((8, 8), (200, 30, 90))
    notify_storage.put(f"results/{job.id}.png", image)
    (row,) = await finish_job(notify_sqlite, job.id, settings)
    assert (row.channel, row.target) == ("push:0", url)

    notifier = Notifier(notify_sqlite, settings, notify_storage)
    await notifier.run_due()
    await finish_job(notify_sqlite, job.id, settings)
    await notifier.run_due()

    (request,) = http_capture.requests
    assert request.path == "/kiosk"
    payload = request.json()
    assert payload["title"] == "Your photo from Gala Night is ready"
    assert f"https://booth.example.com/p/{job.public_id}" in payload["message"]
    (attachment,) = payload["attachments"]
    assert attachment["filename"] == "photo.png"
    assert base64.b64decode(attachment["base64"]) == image


async def test_every_channel_of_a_job_is_its_own_row(notify_sqlite, notify_settings, notify_storage, http_capture):
    settings = notify_settings(
        smtp_url="mailto://127.0.0.1:1?from=b@photobot.test", whatsapp_token="t0k", whatsapp_from="1"
    )
    urls = [f"json://127.0.0.1:{http_capture.port}/a", f"json://127.0.0.1:{http_capture.port}/b"]
    event = await make_event(notify_sqlite, notify_urls=urls)
    job = await make_job(notify_sqlite, event, email="g@example.com", phone="+628123456789")
    await finish_job(notify_sqlite, job.id, settings)
    async with notify_sqlite.session() as session:
        rows = (await session.execute(sa.select(Notification).order_by(Notification.id))).scalars().all()
    assert [(r.channel, r.kind) for r in rows] == [
        ("email", "ready"),
        ("whatsapp", "ready"),
        ("push:0", "ready"),
        ("push:1", "ready"),
    ]


async def test_failed_jobs_apologise_only_when_the_event_enables_it(
    notify_sqlite, notify_settings, notify_storage, http_capture
):
    settings = notify_settings()
    url = f"json://127.0.0.1:{http_capture.port}/kiosk"
    quiet = await make_event(notify_sqlite, notify_urls=[url])
    assert await finish_job(notify_sqlite, (await make_job(notify_sqlite, quiet)).id, settings, kind="failed") == []
    # user jobs (no event) never get the apology either
    loud = await make_event(notify_sqlite, title="Gala Night", notify_urls=[url], notify_on_failure=True)
    job = await make_job(notify_sqlite, loud)
    (row,) = await finish_job(notify_sqlite, job.id, settings, kind="failed")
    assert row.kind == "failed"

    await Notifier(notify_sqlite, settings, notify_storage).run_due()

    (request,) = http_capture.requests
    payload = request.json()
    assert payload["title"] == "Sorry, your photo from Gala Night could not be made"
    assert "try again" in payload["message"]
    assert not payload.get("attachments")


async def test_event_templates_override_the_defaults(notify_sqlite, notify_settings, notify_storage, http_capture):
    settings = notify_settings()
    event = await make_event(
        notify_sqlite,
        title="Gala Night",
        notify_urls=[f"json://127.0.0.1:{http_capture.port}/kiosk"],
        templates={
            "email_subject": "{{ event.title }} | {{ style.name }}",
            "message_text": "Grab it: {{ links.page }}",
        },
    )
    job = await make_job(notify_sqlite, event)
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
    await finish_job(notify_sqlite, job.id, settings)
    await Notifier(notify_sqlite, settings, notify_storage).run_due()
    payload = http_capture.requests[0].json()
    assert payload["title"] == "Gala Night | Pop Art"
    assert payload["message"] == f"Grab it: https://booth.example.com/p/{job.public_id}"
