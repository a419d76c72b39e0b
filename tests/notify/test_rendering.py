"""Message templates: defaults per language, per-event overrides, safe fallbacks."""

from __future__ import annotations

from datetime import UTC, datetime

from photobot.db.models import Event, Job, Style
from photobot.notify.rendering import job_context, render_message, resolve_language


def _context(event: Event | None):
    job = Job(style_id="pb_a", provider="kie", model="m", prompt="p", input_key="k", deadline_at=datetime.now(UTC))
    style = Style(id="pb_a", name="Pop Art", prompt="p")
    return job_context(job, event, style, page_url="https://booth.example.com/p/abc", image_url=None)


def test_languages_fall_back_to_english():
    assert [resolve_language(x) for x in ("es-MX", "id_ID", "fr", None, "EN")] == ["es", "id", "en", "en", "en"]


def test_default_texts_in_each_language():
    for language, expected in (
        ("en", "Your photo from Gala is ready"),
        ("id", "Foto Anda dari Gala sudah siap"),
        ("es", "Tu foto de Gala está lista"),
    ):
        event = Event(name="gala", title="Gala", language=language)
        message = render_message("ready", event.language, {}, _context(event))
        assert message.subject == expected
        assert "https://booth.example.com/p/abc" in message.text
        assert message.html is not None and 'href="https://booth.example.com/p/abc"' in message.html


def test_html_is_escaped_and_branded():
    event = Event(name="gala", title="<Gala & Co>", primary_color="#123456", logo_url="https://x/logo.png")
    html = render_message("ready", "en", {}, _context(event)).html
    assert "&lt;Gala &amp; Co&gt;" in html and "#123456" in html and "https://x/logo.png" in html


def test_overrides_aliases_and_a_broken_override_falls_back():
    event = Event(name="gala", title="Gala")
    templates = {
        "email_subject": "📸 {{ event.title }}",
        "ready_text": "{{ style.name }}: {{ links.page }}",
        "email_html": "{% if %}",  # broken: the default html is used
    }
    message = render_message("ready", "en", templates, _context(event))
    assert message.subject == "📸 Gala"
    assert message.text == "Pop Art: https://booth.example.com/p/abc"
    assert "Open my photo" in message.html


def test_templates_are_sandboxed():
    event = Event(name="gala", title="Gala")
    message = render_message("ready", "en", {"message_text": "{{ ''.__class__.__mro__ }}"}, _context(event))
    assert "object" not in message.text  # the sandbox refused; the default text was used
    assert "Pop Art" in message.text


def test_control_and_bidi_characters_never_reach_a_message():
    # A guest id stored before the edge refused such characters: the plain text must not carry an escape sequence
    # or a right-to-left override that makes "exe.gnp" read as "png.exe".
    event = Event(name="Gala\x1b[2J", title="Gala\u202e")
    context = _context(event)
    context["guest"]["id"] = "A\x00B\u202eC\x07"
    overrides = {"ready_text": "Guest {{ guest.id }} at {{ event.title }}"}
    message = render_message("ready", "en", overrides, context)
    for part in (message.subject, message.text, message.html or ""):
        assert not any(ch in part for ch in "\x00\x07\x1b\u202e"), part
    assert "Guest ABC at Gala" in message.text


def test_user_jobs_without_an_event_render():
    message = render_message("ready", None, None, _context(None))
    assert message.subject == "Your photo from Photobot is ready"
