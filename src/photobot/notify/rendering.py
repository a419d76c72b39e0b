"""Message texts: Jinja2 templates per language, overridable per event.

Defaults live in `notify/templates/{language}/{kind}_{part}.txt|html` (kinds: ready, failed, alert; parts:
subject, text, html). An event overrides any of them through `Event.templates`, keyed `{kind}_{part}`
(`ready_subject`, `failed_text`, `alert_subject`, ...), with the friendlier aliases `email_subject`,
`email_html` and `message_text` for the "photo ready" message. Templates run in Jinja's sandbox because
event templates come from organisers, and a broken override falls back to the default instead of losing
the message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from photobot.db.models import Event, Job, Style
from photobot.jsontext import strip_controls

log = logging.getLogger("photobot.notify")

TEMPLATE_DIR = Path(__file__).parent / "templates"
LANGUAGES = ("en", "id", "es")
DEFAULT_LANGUAGE = "en"

Kind = Literal["ready", "failed", "alert"]
Part = Literal["subject", "text", "html"]

_ALIASES: dict[str, str] = {
    "email_subject": "ready_subject",
    "email_html": "ready_html",
    "message_text": "ready_text",
}


@dataclass(frozen=True)
class Message:
    """One rendered message: the email uses subject + html, WhatsApp and push use text (+ subject as title)."""

    subject: str
    text: str
    html: str | None


def _clean(value: Any) -> Any:
    """Every value a template prints passes here: no control or bidi-override character reaches a message."""
    return strip_controls(value) if isinstance(value, str) else value


def _environment(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=autoescape,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_clean,
    )


_TEXT_ENV = _environment(autoescape=False)
_HTML_ENV = _environment(autoescape=True)


def resolve_language(language: str | None) -> str:
    """`es-MX` → `es`; anything we have no templates for → English."""
    base = (language or DEFAULT_LANGUAGE).replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def normalise_overrides(templates: dict[str, str] | None) -> dict[str, str]:
    """Event.templates with aliases resolved to `{kind}_{part}` keys; the canonical key wins over an alias."""
    result: dict[str, str] = {}
    for key, source in (templates or {}).items():
        if isinstance(source, str) and source.strip():
            result.setdefault(_ALIASES.get(key, key), source)
    for key, source in (templates or {}).items():
        if key not in _ALIASES and isinstance(source, str) and source.strip():
            result[key] = source
    return result


def render_part(kind: Kind, part: Part, language: str, overrides: dict[str, str], context: dict[str, Any]) -> str:
    env = _HTML_ENV if part == "html" else _TEXT_ENV
    key = f"{kind}_{part}"
    source = overrides.get(key)
    if source is not None:
        try:
            return env.from_string(source).render(context).strip()
        except jinja2.TemplateError as exc:
            log.warning("event template %s is broken, using the default: %s", key, exc.__class__.__name__)
    suffix = "html" if part == "html" else "txt"
    return env.get_template(f"{language}/{key}.{suffix}").render(context).strip()


def render_message(
    kind: Kind, language: str | None, templates: dict[str, str] | None, context: dict[str, Any]
) -> Message:
    """Render subject, text and (except for alerts) html for one message."""
    lang = resolve_language(language)
    overrides = normalise_overrides(templates)
    subject = " ".join(render_part(kind, "subject", lang, overrides, context).split())
    text = render_part(kind, "text", lang, overrides, context)
    html = None
    if kind != "alert":
        html = render_part(kind, "html", lang, overrides, {**context, "subject": subject})
    return Message(subject=subject, text=text, html=html)


def event_context(event: Event | None) -> dict[str, Any]:
    if event is None:
        return {
            "name": "",
            "title": "Photobot",
            "logo_url": None,
            "primary_color": None,
            "footer_text": None,
            "language": DEFAULT_LANGUAGE,
        }
    return {
        "id": event.id,
        "name": event.name,
        "title": event.title or event.name,
        "logo_url": event.logo_url,
        "primary_color": event.primary_color,
        "footer_text": event.footer_text,
        "language": resolve_language(event.language),
    }


def job_context(
    job: Job,
    event: Event | None,
    style: Style | None,
    *,
    page_url: str,
    image_url: str | None,
    photo_cid: str | None = None,
) -> dict[str, Any]:
    """The variables a guest message template sees: guest, event, style, links, job, photo.

    `photo.cid` is the Content-ID of the photo attached to the email (`<img src="cid:{{ photo.cid }}">` shows it
    in the message); None when no photo goes along. The guest's email and phone are deliberately absent: a
    template pushed to a kiosk backend or a chat must not leak them.
    """
    return {
        "guest": {"id": job.guest_id},
        "event": event_context(event),
        "style": {"id": job.style_id, "name": style.name if style else job.style_id},
        "links": {"page": page_url, "image": image_url},
        "job": {"id": job.public_id, "state": job.state, "error_code": job.error_code},
        "photo": {"cid": photo_cid},
    }
