"""WhatsApp: the Apprise URL and message built for a job, and the Meta Cloud API request the plugin sends.

Capture choice: Apprise's WhatsApp plugin posts with `requests` to the class attribute
`NotifyWhatsApp.notify_url` (`https://graph.facebook.com/{fb_ver}/{phone_id}/messages`). The tests point that
one attribute at a plain-HTTP capture server on loopback (monkeypatch, undone after each test), so the real
plugin code, the real `requests` transport and a real socket carry the request: what the server records is
byte for byte what Meta would receive, minus TLS. Patching `requests` adapters would also work but would skip
the socket and HTTP framing; a TLS capture would need a CA bundle the plugin does not let us pass.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from apprise.plugins.whatsapp import NotifyWhatsApp

from photobot.db.models import Event, Job, Notification
from photobot.notify import Notifier
from photobot.notify.channels import build_delivery
from photobot.notify.rendering import job_context, render_message
from tests.support.images import png
from tests.support.seed import finish_job, make_event, make_job

TOKEN = "EAAGtoken123"
SENDER = "1234567890"
PHONE = "+62 812-3456-789"
E164 = "+628123456789"


@pytest.fixture
def meta_api(http_capture, monkeypatch):
    monkeypatch.setattr(
        NotifyWhatsApp, "notify_url", f"http://127.0.0.1:{http_capture.port}/{{fb_ver}}/{{phone_id}}/messages"
    )
    return http_capture


def _settings(notify_settings, **extra):
    return notify_settings(whatsapp_token=TOKEN, whatsapp_from=SENDER, **extra)


async def _row(db, job_id):
    async with db.session() as session:
        result = await session.execute(sa.select(Notification).where(Notification.job_id == job_id))
        return result.scalars().one()


async def test_the_apprise_url_and_message_built_for_a_job(notify_sqlite, notify_settings):
    settings = _settings(notify_settings)
    event = await make_event(notify_sqlite, title="Gala Night")
    job = await make_job(notify_sqlite, event, phone=PHONE)
    (row,) = await finish_job(notify_sqlite, job.id, settings)
    assert (row.channel, row.target) == ("whatsapp", E164)

    context = job_context(job, event, None, page_url=f"https://booth.example.com/p/{job.public_id}", image_url=None)
    message = render_message("ready", "en", {}, context)
    delivery = build_delivery("whatsapp", row.target, message, settings, language="en", kind="ready")
    assert delivery.url == f"whatsapp://{TOKEN}@{SENDER}/%2B628123456789"
    assert delivery.body == (
        f"Your pb_a photo from Gala Night is ready! See and download it here: https://booth.example.com/p/{job.public_id}"
    )
    assert delivery.title == "" and delivery.attach_photo is False
    assert TOKEN not in repr(delivery)

    templated = build_delivery(
        "whatsapp",
        row.target,
        message,
        _settings(notify_settings, whatsapp_template="photo_ready"),
        language="id",
        kind="ready",
    )
    assert templated.url == f"whatsapp://photo_ready:{TOKEN}@{SENDER}/%2B628123456789?lang=id&%3Abody=1"


async def test_the_meta_request_the_plugin_sends(notify_sqlite, notify_settings, notify_storage, meta_api, caplog):
    caplog.set_level(logging.DEBUG)
    settings = _settings(notify_settings)
    event = await make_event(notify_sqlite, title="Gala Night")
    job = await make_job(notify_sqlite, event, phone=PHONE, email=None)
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
    await finish_job(notify_sqlite, job.id, settings)

    assert await Notifier(notify_sqlite, settings, notify_storage).run_due() == 1

    (request,) = meta_api.requests
    assert request.path == f"/v21.0/{SENDER}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "to": E164,
        "recipient_type": "individual",
        "type": "text",
        "text": {
            "body": "Your Pop Art photo from Gala Night is ready! See and download it here: "
            f"https://booth.example.com/p/{job.public_id}"
        },
    }
    row = await _row(notify_sqlite, job.id)
    assert row.state == "sent"

    # neither the phone number nor the token is in any log line (Apprise logs the payload at DEBUG)
    ours = [r for r in caplog.records if r.name.startswith(("photobot", "apprise"))]
    assert any("WhatsApp" in r.getMessage() for r in ours)
    for record in ours:
        line = record.getMessage() + repr(record.__dict__)
        assert "8123456789" not in line and "812-3456" not in line and TOKEN not in line


async def test_an_approved_template_in_the_events_language(notify_sqlite, notify_settings, notify_storage, meta_api):
    settings = _settings(notify_settings, whatsapp_template="photo_ready")
    event = await make_event(notify_sqlite, title="Malam Gala", language="id")
    job = await make_job(notify_sqlite, event, phone=PHONE)
    await finish_job(notify_sqlite, job.id, settings)

    await Notifier(notify_sqlite, settings, notify_storage).run_due()

    payload = meta_api.requests[0].json()
    assert payload["type"] == "template"
    assert payload["template"]["name"] == "photo_ready"
    assert payload["template"]["language"] == {"code": "id"}
    (parameter,) = payload["template"]["components"][0]["parameters"]
    assert parameter["type"] == "text"
    assert f"https://booth.example.com/p/{job.public_id}" in parameter["text"]
    assert parameter["text"].startswith("Foto Pop Art Anda dari Malam Gala sudah siap")


async def test_a_meta_error_is_kept_masked_and_retried(notify_sqlite, notify_settings, notify_storage, meta_api):
    meta_api.status = 400
    meta_api.response = (
        b'{"error": {"message": "(#131030) Recipient phone number not in allowed list", "code": 131030}}'
    )
    settings = _settings(notify_settings)
    job = await make_job(notify_sqlite, await make_event(notify_sqlite), phone=PHONE)
    await finish_job(notify_sqlite, job.id, settings)

    await Notifier(notify_sqlite, settings, notify_storage, base_backoff_s=60).run_due()

    row = await _row(notify_sqlite, job.id)
    assert row.state == "pending" and row.attempts == 1
    assert "Recipient phone number not in allowed list" in row.last_error
    assert "+62******789" in row.last_error and "8123456789" not in row.last_error
    async with notify_sqlite.session() as session:
        assert (await session.get(Job, job.id)).state == "completed"
        assert (await session.get(Event, job.event_id)) is not None
