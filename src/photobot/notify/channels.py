"""Which channels a job notifies, and the Apprise URL each channel sends to.

Channels, one notification row each (unique per job):
- `email`: the guest's address through `PHOTOBOT_SMTP_URL` (mailto:// or mailtos://), HTML with the photo shown
  in the message (`inline=yes`: an attached image part with a Content-ID the HTML's `cid:` names);
- `whatsapp`: the guest's phone through Apprise's `whatsapp://` (Meta Cloud API), text with the link;
- `push:<n>`: the event's n-th extra Apprise URL (`Event.notify_urls`): ntfy, Telegram, json:// ...

A row's `target` holds the recipient (address, phone) or, for push, the event's own URL; the SMTP and WhatsApp
credentials are joined in only at send time, so no secret is copied into the notifications table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from photobot.db.models import Event, Job
from photobot.notify.masking import mask_email, mask_phone
from photobot.notify.rendering import Message, resolve_language
from photobot.settings import Settings

EMAIL = "email"
WHATSAPP = "whatsapp"
PUSH_PREFIX = "push:"

# Meta template language codes for our template languages (Meta has no plain "en" for most accounts)
_WHATSAPP_LANGUAGES = {"en": "en_US", "id": "id", "es": "es"}


@dataclass(frozen=True)
class PlannedChannel:
    channel: str
    target: str


def family(channel: str) -> str:
    """`push:3` → `push`: the label for metrics and logs."""
    return channel.split(":", 1)[0]


def describe_target(channel: str, target: str) -> str:
    """A target as it may appear in a log line: masked address or phone; push URLs only by scheme."""
    if channel == EMAIL:
        return mask_email(target)
    if channel == WHATSAPP:
        return mask_phone(target)
    return f"{urlsplit(target).scheme or '?'}://…"


def normalise_phone(phone: str) -> str:
    """`+62 812-3456-789` → `+628123456789` (E.164 digits as Apprise and Meta expect)."""
    return "+" + re.sub(r"\D", "", phone)


def whatsapp_configured(settings: Settings) -> bool:
    return bool(settings.whatsapp_token and settings.whatsapp_from)


def plan_channels(job: Job, event: Event | None, settings: Settings) -> list[PlannedChannel]:
    """The channels this job should be told on, given what the guest left and what is configured."""
    planned: list[PlannedChannel] = []
    if job.email and settings.smtp_url:
        planned.append(PlannedChannel(EMAIL, job.email.strip()))
    if job.phone and whatsapp_configured(settings) and re.sub(r"\D", "", job.phone):
        planned.append(PlannedChannel(WHATSAPP, normalise_phone(job.phone)))
    for index, url in enumerate(event.notify_urls if event else []):
        if isinstance(url, str) and url.strip():
            planned.append(PlannedChannel(f"{PUSH_PREFIX}{index}", url.strip()))
    return planned


def email_url(smtp_url: str, recipient: str) -> str:
    """PHOTOBOT_SMTP_URL with the guest as the only `to=` recipient (any `to` in the setting is replaced) and
    `inline=yes` (image attachments shown in the message, through their Content-ID).

    The query is re-encoded with `%20` for a space, never `+`: Apprise reads its parameters with `unquote`, which
    keeps a `+`, so `from=Photo%20Booth%20<booth@example.com>` would otherwise arrive as `From: Photo+Booth`.
    """
    parts = urlsplit(smtp_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in ("to", "inline")]
    query += [("to", recipient), ("inline", "yes")]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote), parts.fragment))


def whatsapp_url(settings: Settings, phone: str, language: str | None) -> str:
    """`whatsapp://[template:]token@from_phone_id/+phone[?lang=..&:body=1]`.

    Without `PHOTOBOT_WHATSAPP_TEMPLATE` the message goes as free text (Meta only delivers that inside the
    24 h customer-service window); with it, the approved template is sent in the event's language and our
    text fills its first body parameter `{{1}}`.
    """
    assert settings.whatsapp_token is not None and settings.whatsapp_from
    token = quote(settings.whatsapp_token.get_secret_value(), safe="")
    sender = quote(settings.whatsapp_from, safe="")
    target = quote(normalise_phone(phone), safe="")
    if not settings.whatsapp_template:
        return f"whatsapp://{token}@{sender}/{target}"
    template = quote(settings.whatsapp_template, safe="")
    lang = _WHATSAPP_LANGUAGES.get(resolve_language(language), "en_US")
    return f"whatsapp://{template}:{token}@{sender}/{target}?{urlencode({'lang': lang, ':body': '1'})}"


@dataclass(frozen=True)
class Delivery:
    """Everything one Apprise call needs; `url` holds credentials, so it is kept out of repr."""

    url: str = field(repr=False)
    title: str
    body: str
    body_format: str  # "html" | "text"
    attach_photo: bool


def build_delivery(
    channel: str, target: str, message: Message, settings: Settings, *, language: str | None, kind: str
) -> Delivery:
    """The Apprise call for one notification row: URL, title, body and whether the photo goes along."""
    with_photo = kind == "ready"
    if channel == EMAIL:
        if settings.smtp_url is None:
            raise ChannelNotConfigured("PHOTOBOT_SMTP_URL is not set")
        return Delivery(
            url=email_url(settings.smtp_url.get_secret_value(), target),
            title=message.subject,
            body=message.html or message.text,
            body_format="html" if message.html else "text",
            attach_photo=with_photo,
        )
    if channel == WHATSAPP:
        if not whatsapp_configured(settings):
            raise ChannelNotConfigured("PHOTOBOT_WHATSAPP_TOKEN / PHOTOBOT_WHATSAPP_FROM are not set")
        # WhatsApp carries no title (Apprise would prepend it) and no image through this API
        return Delivery(
            url=whatsapp_url(settings, target, language),
            title="",
            body=message.text,
            body_format="text",
            attach_photo=False,
        )
    if channel.startswith(PUSH_PREFIX):
        return Delivery(
            url=target, title=message.subject, body=message.text, body_format="text", attach_photo=with_photo
        )
    raise ChannelNotConfigured(f"unknown channel {channel!r}")


class ChannelNotConfigured(Exception):
    """The channel cannot be sent with the current settings; retrying will not help."""
