"""Request and response shapes of the admin API (validation and OpenAPI from the same models).

Responses never carry secrets: provider keys are masked (`…abcd`), client tokens are shown once at creation,
Apprise URLs (which hold passwords and bot tokens) only by scheme, guest e-mail and phone masked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from photobot.db.models import (
    ClientToken,
    CreditLedger,
    Event,
    Job,
    JobState,
    JobTransition,
    Notification,
    ProviderKey,
    Style,
    User,
    utcnow,
)
from photobot.jsontext import INT_MAX
from photobot.notify.channels import describe_target
from photobot.notify.masking import mask_email, mask_phone
from photobot.services.operations import EventStats

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


def mask_url(url: str) -> str:
    """An Apprise URL by its scheme only: the rest may hold a password or a bot token."""
    return f"{urlsplit(url).scheme or '?'}://…"


# --- events and users ---------------------------------------------------------------------------------------
class EventFields(BaseModel):
    model_config = _STRICT

    title: str | None = Field(None, max_length=200, description="Shown on guest pages and in messages.")
    logo_url: str | None = Field(None, max_length=1000)
    primary_color: str | None = Field(None, max_length=20, pattern=r"^#?[0-9A-Fa-f]{3,8}$|^[a-z]+$")
    footer_text: str | None = Field(None, max_length=500)
    language: str | None = Field(None, max_length=10, description="en, es, id, …")
    notify_urls: list[str] | None = Field(None, description="Extra Apprise URLs told about every photo.")
    alert_urls: list[str] | None = Field(None, description="Organiser alert Apprise URLs (credits running low).")
    notify_on_failure: bool | None = None
    templates: dict[str, str] | None = None
    consent_required: bool | None = Field(None, description="Refuse submissions without `consent: true` (422).")
    consent_text: str | None = Field(None, max_length=1000, description="What the kiosk's consent box says.")
    moderation: Literal["auto", "approve"] | None = Field(
        None, description="`approve`: photos reach the gallery and live wall only once approved."
    )
    max_photos_per_guest: int | None = Field(
        None, ge=1, le=10_000, description="Photos per guest (same guest_id, e-mail or phone); null: no cap."
    )
    retention_days: int | None = Field(
        None, ge=1, le=3650, description="Days photos are kept; null: PHOTOBOT_RESULT_TTL_DAYS."
    )
    styles: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, max_length=200,
        description="Style ids the event's kiosks offer, in their order; [] offers every active style.",
    )  # fmt: skip

    @field_validator("notify_urls", "alert_urls")
    @classmethod
    def _apprise_urls(cls, value: list[str] | None) -> list[str] | None:
        for url in value or []:
            if "://" not in url or len(url) > 1000 or any(ch.isspace() for ch in url):
                raise ValueError("each entry must be an Apprise URL such as mailto://… or tgram://…")
        return value


class EventCreate(EventFields):
    name: str = Field(min_length=1, max_length=200)
    credits: int = Field(0, ge=0, description="Credits granted at creation.")


class EventUpdate(EventFields):
    name: str | None = Field(None, min_length=1, max_length=200)


class GuestIn(BaseModel):
    """One guest of the event, by exactly one identifier."""

    model_config = _STRICT
    email: str | None = Field(None, max_length=320, description="The guest's e-mail address (any case).")
    phone: str | None = Field(None, max_length=32, description="E.164, e.g. +628123456789.")
    guest_id: str | None = Field(None, max_length=200, description="The booth's guest id.")


class ForgetOut(BaseModel):
    event_id: int
    jobs: int = Field(description="The guest's jobs, now anonymised.")
    jobs_failed: int = Field(description="Of them, jobs still in flight: failed, their credit released.")
    files_deleted: int = Field(description="Photos, uploads and thumbnails deleted from storage.")
    notifications_cancelled: int = Field(description="Messages not sent yet, now never sent.")
    job_ids: list[str]
    webhook_messages_scrubbed: int = Field(description="Outbound webhook messages whose guest_id was blanked.")


class PurgeOut(BaseModel):
    event_id: int
    jobs: int = Field(description="Jobs of the event whose photos are gone.")
    jobs_failed: int = Field(description="Of them, jobs still in flight: failed, their credit released.")
    files_deleted: int
    notifications_cancelled: int


class CreditsIn(BaseModel):
    model_config = _STRICT
    add: int = Field(gt=0, le=1_000_000, description="Credits to grant (a `grant` ledger row).")


class EventOut(BaseModel):
    id: int
    name: str
    credits: int
    granted_total: int
    title: str | None
    logo_url: str | None
    primary_color: str | None
    footer_text: str | None
    language: str
    notify_urls: list[str] = Field(description="Masked: scheme only.")
    alert_urls: list[str] = Field(description="Masked: scheme only.")
    notify_on_failure: bool
    templates: dict[str, str]
    consent_required: bool
    consent_text: str | None
    moderation: Literal["auto", "approve"]
    max_photos_per_guest: int | None
    retention_days: int | None
    styles: list[str] = Field(description="The styles offered, in order; empty: every active style.")
    created_at: datetime

    @classmethod
    def of(cls, event: Event) -> EventOut:
        data = event.model_dump()
        data["notify_urls"] = [mask_url(u) for u in event.notify_urls]
        data["alert_urls"] = [mask_url(u) for u in event.alert_urls]
        return cls.model_validate(data)


class UserCreate(BaseModel):
    model_config = _STRICT
    external_id: str = Field(min_length=1, max_length=200)
    credits: int = Field(0, ge=0)


class UserOut(BaseModel):
    id: int
    external_id: str
    credits: int
    granted_total: int
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls.model_validate(user.model_dump())


class StatsQuery(BaseModel):
    model_config = _STRICT
    since: datetime | None = Field(None, description="Count jobs created at or after (ISO 8601).")
    until: datetime | None = Field(None, description="Count jobs created before (ISO 8601).")


class EventStatsOut(BaseModel):
    event_id: int
    name: str
    submitted: int
    completed: int
    failed: int
    in_flight: int
    credits_spent: int = Field(description="Credits of completed jobs.")
    credits_reserved: int = Field(description="Credits held by jobs in flight.")
    credits_refunded: int = Field(description="Credits released by failed jobs.")
    credits_balance: int
    credits_granted: int
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(cls, stats: EventStats) -> EventStatsOut:
        return cls.model_validate(stats.as_dict())


# --- styles ---------------------------------------------------------------------------------------------------
class StyleOut(BaseModel):
    id: str
    name: str
    prompt: str
    model: str
    provider: str | None
    aspect_ratio: str | None
    resolution: str | None
    output_format: str | None
    cost: int
    reference_keys: list[str]
    preview_key: str | None = Field(description="Storage key of the example image the kiosk shows.")
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, style: Style) -> StyleOut:
        return cls.model_validate(style.model_dump())


# --- keys and tokens ----------------------------------------------------------------------------------------------
class KeyCreate(BaseModel):
    model_config = _STRICT
    provider: Literal["kie", "fal"]
    secret: str = Field(min_length=8, max_length=500, description="The provider API key (never shown again).")
    label: str | None = Field(None, max_length=200)


class KeyDisable(BaseModel):
    model_config = _STRICT
    reason: str = Field("disabled by operator", max_length=200)


class KeyOut(BaseModel):
    id: int
    provider: str
    secret: str = Field(description="Masked: the last four characters only.")
    label: str | None
    active: bool
    state: Literal["usable", "cooling_down", "exhausted", "disabled"]
    last_used_at: datetime | None
    cooldown_until: datetime | None
    failure_count: int
    disabled_reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, key: ProviderKey) -> KeyOut:
        from photobot.web.metrics import key_state

        data = key.model_dump(exclude={"secret"})
        return cls.model_validate({**data, "secret": key.masked, "state": key_state(key, utcnow())})


class TokenCreate(BaseModel):
    model_config = _STRICT
    scope: Literal["event", "app", "admin"]
    event_id: int | None = Field(None, description="Required for event (kiosk) tokens.")
    label: str | None = Field(None, max_length=200)


class TokenOut(BaseModel):
    id: int
    scope: str
    event_id: int | None
    label: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ClientToken) -> TokenOut:
        return cls.model_validate(token.model_dump(exclude={"token_hash"}))


class TokenCreated(TokenOut):
    token: str = Field(description="The bearer token. Shown once: only its hash is stored.")


# --- jobs ---------------------------------------------------------------------------------------------------------
class JobsQuery(BaseModel):
    model_config = _STRICT
    event_id: int | None = Field(None, ge=1, le=INT_MAX)
    user_id: int | None = Field(None, ge=1, le=INT_MAX)
    state: str | None = Field(
        None, description="pending, processing, submitting, waiting, finishing, completed or failed."
    )
    since: datetime | None = Field(None, description="Created at or after (ISO 8601).")
    until: datetime | None = Field(None, description="Created before (ISO 8601).")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=INT_MAX)


class AdminJobOut(BaseModel):
    id: str
    public_id: str
    status: Literal["pending", "processing", "completed", "failed"]
    state: str
    event_id: int | None
    user_id: int | None
    token_id: int | None
    style_id: str
    cost: int
    provider: str
    model: str
    aspect_ratio: str | None
    resolution: str | None
    output_format: str | None
    provider_task_id: str | None
    provider_key_id: int | None
    attempts: int
    next_attempt_at: datetime | None
    deadline_at: datetime
    lease_owner: str | None
    error_code: str | None
    error_message: str | None
    guest_id: str | None
    email: str | None = Field(description="Masked.")
    phone: str | None = Field(description="Masked.")
    input_key: str | None
    result_key: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    callback_at: datetime | None
    completed_at: datetime | None
    purged_at: datetime | None
    consent_at: datetime | None = None
    approved_at: datetime | None = None
    hidden_at: datetime | None = None
    forgotten_at: datetime | None = None

    @classmethod
    def of(cls, job: Job) -> AdminJobOut:
        data = job.model_dump(exclude={"request_hash", "idempotency_key", "prompt", "provider_meta", "result_urls"})
        data["status"] = JobState(job.state).public
        data["email"] = mask_email(job.email) if job.email else None
        data["phone"] = mask_phone(job.phone) if job.phone else None
        return cls.model_validate(data)


class TransitionOut(BaseModel):
    from_state: str | None
    to_state: str
    note: str | None
    at: datetime

    @classmethod
    def of(cls, row: JobTransition) -> TransitionOut:
        return cls.model_validate(row.model_dump())


class LedgerOut(BaseModel):
    id: int
    reason: str
    delta: int
    event_id: int | None
    user_id: int | None
    note: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: CreditLedger) -> LedgerOut:
        return cls.model_validate(row.model_dump())


class NotificationOut(BaseModel):
    id: int
    job_id: str
    channel: str
    kind: str
    target: str = Field(description="Masked.")
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: Notification) -> NotificationOut:
        data = row.model_dump()
        data["target"] = describe_target(row.channel, row.target)
        return cls.model_validate(data)


class JobDetailOut(BaseModel):
    job: AdminJobOut
    transitions: list[TransitionOut]
    ledger: list[LedgerOut]
    notifications: list[NotificationOut]

    @classmethod
    def of(cls, details: dict[str, Any]) -> JobDetailOut:
        return cls(
            job=AdminJobOut.of(details["job"]),
            transitions=[TransitionOut.of(t) for t in details["transitions"]],
            ledger=[LedgerOut.of(r) for r in details["ledger"]],
            notifications=[NotificationOut.of(n) for n in details["notifications"]],
        )


class RetryOut(BaseModel):
    retry_of: str = Field(description="The failed job this one repeats.")
    job: AdminJobOut


class FailIn(BaseModel):
    model_config = _STRICT
    reason: str | None = Field(None, max_length=500, description="Stored as the job's error message.")


class ResendIn(BaseModel):
    model_config = _STRICT
    channel: str = Field(min_length=1, max_length=64, description="email, whatsapp or push:<n>.")


# --- packs and purchases -------------------------------------------------------------------------------------
class PackCreate(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    credits: int = Field(ge=1, le=1_000_000)
    price: str = Field(min_length=1, max_length=20, pattern=r"^\d+(\.\d{1,2})?$", description="Decimal text: 9.90")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. BRL")


class PackOut(BaseModel):
    id: int
    name: str
    credits: int
    price: str = Field(description="Decimal text with two decimals, e.g. 9.90")
    currency: str
    active: bool


class PurchasesQuery(BaseModel):
    model_config = _STRICT
    event_id: int | None = Field(None, ge=1, le=2**31 - 1)
    user_id: int | None = Field(None, ge=1, le=2**31 - 1)


class AdminPurchaseOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    status: str
    credits: int
    price: str
    currency: str


# --- outbound webhooks (docs/webhooks.md) ---------------------------------------------------------------------
WebhookType = Literal["job.completed", "job.failed", "credits.low", "purchase.approved"]


class WebhookCreate(BaseModel):
    model_config = _STRICT
    url: str = Field(min_length=1, max_length=2000, description="https, a public address (see docs/webhooks.md)")
    event_id: int | None = Field(None, ge=1, le=INT_MAX, description="Hear this event only; omitted: every event")
    types: list[WebhookType] | None = Field(None, min_length=1, description="Message types; omitted: all of them")
    description: str | None = Field(None, max_length=200)


class WebhookRotate(BaseModel):
    model_config = _STRICT
    overlap_s: int | None = Field(
        None, ge=0, le=30 * 86400, description="Seconds the old secret keeps signing; default the setting"
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    types: list[str]
    event_id: int | None
    description: str | None
    active: bool
    disabled_reason: str | None
    failing_since: datetime | None
    old_secret_until: datetime | None = Field(description="While a rotation's old secret still signs")
    created_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="`whsec_…`: shown only in this answer (add, rotate-secret)")


class WebhookAttemptOut(BaseModel):
    at: datetime
    status: int | None = Field(description="The HTTP status, or null when no answer came (refused, timeout)")
    error: str | None
    duration_ms: int


class WebhookDeliveryOut(BaseModel):
    message_id: str = Field(description="The `webhook-id` the receiver saw")
    type: str
    created_at: datetime
    endpoint_id: int
    state: Literal["pending", "sending", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    history: list[WebhookAttemptOut]


class WebhookDeliveriesQuery(BaseModel):
    model_config = _STRICT
    limit: int = Field(50, ge=1, le=1000)
