"""The e-mail as a guest's mail app gets it, through a real SMTP server (aiosmtpd), parsed from the received MIME:
the sender's display name survives Apprise's URL (`from=Photo%20Booth%20<…>`, not `Photo+Booth`), the HTML is
responsive (viewport meta, fluid width) and shows the photo in the message through its Content-ID while the photo
is still an attached file, and the plain-text part is clean text (no control characters, no markup)."""

from __future__ import annotations

import unicodedata
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import pytest

from photobot.notify import Notifier
from tests.support.images import png
from tests.support.seed import finish_job, make_event, make_job

GUEST = "guest.person@example.com"


def received(smtp: Any) -> EmailMessage:
    message = message_from_bytes(smtp.envelopes[-1].content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def part(message: EmailMessage, content_type: str) -> EmailMessage:
    found = [p for p in message.walk() if p.get_content_type() == content_type]
    assert len(found) == 1, [p.get_content_type() for p in message.walk()]
    assert isinstance(found[0], EmailMessage)
    return found[0]


def assert_clean_text(text: str) -> None:
    """Line breaks only (CR LF is how MIME carries them; no lone CR), no other control or format character."""
    assert "\r" not in text.replace("\r\n", ""), repr(text)
    text = text.replace("\r\n", "\n")
    controls = {c for c in text if unicodedata.category(c) in ("Cc", "Cf") and c != "\n"}
    assert not controls, sorted(map(hex, map(ord, controls)))
    assert "<" not in text and "@media" not in text and "{" not in text, text  # no markup or CSS leaked in


@pytest.mark.parametrize(
    ("sender", "name"),
    [
        ("Photo%20Booth%20<booth@example.com>", "Photo Booth"),  # the form docs/notifications.md shows
        ("Photo+Booth+<booth@example.com>", "Photo Booth"),  # form-encoded spaces
        ("Fotomat%C3%B3n%20Ana%20%26%20Budi%20<booth@example.com>", "Fotomatón Ana & Budi"),  # non-ASCII, &
    ],
)
async def test_display_name_survives(notify_sqlite, notify_smtp, notify_settings, notify_storage, sender, name):
    url = f"mailto://{notify_smtp.host}:{notify_smtp.port}?from={sender}&mode=insecure"
    settings = notify_settings(smtp_url=url)
    event = await make_event(notify_sqlite)
    job = await make_job(notify_sqlite, event, email=GUEST)
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
    await finish_job(notify_sqlite, job.id, settings)
    assert await Notifier(notify_sqlite, settings, notify_storage).run_due() == 1

    message = received(notify_smtp)
    assert parseaddr(str(message["From"])) == (name, "booth@example.com")
    assert notify_smtp.envelopes[-1].mail_from == "booth@example.com"
    assert notify_smtp.envelopes[-1].rcpt_tos == [GUEST]


async def test_photo_shown_in_the_message_and_attached(notify_db, notify_smtp, notify_settings, notify_storage):
    settings = notify_settings(smtp_url=notify_smtp.url)
    event = await make_event(notify_db, title="Gala Night", primary_color="#ff0066", footer_text="Thanks for coming")
    job = await make_job(notify_db, event, email=GUEST, style_id="pb_a")
    image = png((640, 480), (30, 140, 200))
    notify_storage.put(f"results/{job.id}.png", image)
    await finish_job(notify_db, job.id, settings)
    assert await Notifier(notify_db, settings, notify_storage).run_due() == 1

    message = received(notify_smtp)
    # multipart/related: the alternative (text, html) and the photo it refers to
    assert message.get_content_type() == "multipart/related"
    assert [p.get_content_type() for p in message.iter_parts()] == ["multipart/alternative", "image/png"]
    html = part(message, "text/html").get_content()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "max-width:560px" in html and "@media only screen and (max-width: 600px)" in html
    photo = part(message, "image/png")
    assert photo["Content-ID"] == "<photo.png>"
    assert f'<img src="cid:{photo["Content-ID"][1:-1]}"' in html  # shown where the HTML puts it, once
    assert html.count("cid:") == 1
    assert photo.get_content_disposition() == "inline" and photo.get_filename() == "photo.png"  # a saveable file
    assert photo.get_content() == image
    assert "#ff0066" in html and "Thanks for coming" in html

    text = part(message, "text/plain").get_content()
    page = f"https://booth.example.com/p/{job.public_id}"
    assert page in text and "Gala Night" in text and "Thanks for coming" in text
    assert_clean_text(text)


async def test_hostile_event_fields_leave_no_control_characters(
    notify_sqlite, notify_smtp, notify_settings, notify_storage
):
    settings = notify_settings(smtp_url=notify_smtp.url)
    event = await make_event(
        notify_sqlite,
        title="Gala\x00\x1b[31m Night\u202e",
        footer_text="Thanks\r\nBcc: evil@example.com\x07",
        templates={"ready_subject": "Ready\x0b{{ event.title }}"},
    )
    job = await make_job(notify_sqlite, event, email=GUEST)
    notify_storage.put(f"results/{job.id}.png", png((8, 8), (200, 30, 90)))
    await finish_job(notify_sqlite, job.id, settings)
    assert await Notifier(notify_sqlite, settings, notify_storage).run_due() == 1

    message = received(notify_smtp)
    assert notify_smtp.envelopes[-1].rcpt_tos == [GUEST]  # no header injection
    assert message["Bcc"] is None
    assert_clean_text(str(message["Subject"]))
    text = part(message, "text/plain").get_content()
    assert_clean_text(text)
    assert "Gala" in text and "Night" in text


async def test_an_event_html_override_without_the_cid_still_shows_the_photo(
    notify_sqlite, notify_smtp, notify_settings, notify_storage
):
    settings = notify_settings(smtp_url=notify_smtp.url)
    event = await make_event(notify_sqlite, templates={"email_html": "<p>Here it is, {{ style.name }}!</p>"})
    job = await make_job(notify_sqlite, event, email=GUEST)
    image = png((8, 8), (200, 30, 90))
    notify_storage.put(f"results/{job.id}.png", image)
    await finish_job(notify_sqlite, job.id, settings)
    assert await Notifier(notify_sqlite, settings, notify_storage).run_due() == 1

    message = received(notify_smtp)
    html = part(message, "text/html").get_content()
    assert html.startswith("<p>Here it is, Pop Art!</p>") and '<img src="cid:photo.png">' in html  # appended
    photo = part(message, "image/png")
    assert photo["Content-ID"] == "<photo.png>" and photo.get_content() == image
