"""The data model: every fact that must survive a crash.

The job row is the queue: the dispatcher claims jobs by `(state, next_attempt_at)` and moves them along
`pending → submitting → waiting → finishing → completed | failed` with conditional updates (see `jobs/states.py`).
Credits are an append-only ledger next to a cached balance on the account row; `grant`, `reserve` and
`release` rows carry the delta, a `settle` row (delta 0) marks a reservation as spent. So for every account:
balance == sum(ledger.delta), and each job has one `reserve` and at most one of `settle` / `release`
(a unique index on `(job_id, reason)` makes "exactly once" a database fact, not a hope).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel, col


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_type=sa.JSON, nullable=False)


def new_job_id() -> str:
    return uuid.uuid4().hex


def new_public_id() -> str:
    """Unguessable id for the guest page (/p/{public_id}); 128 bits."""
    return secrets.token_urlsafe(16)


class Moderation(StrEnum):
    """How an event's photos reach its gallery and live wall: at once (`auto`) or once approved (`approve`)."""

    auto = "auto"
    approve = "approve"


class JobState(StrEnum):
    pending = "pending"
    submitting = "submitting"
    waiting = "waiting"
    finishing = "finishing"
    completed = "completed"
    failed = "failed"

    @property
    def public(self) -> PublicStatus:
        """The status clients see (seed 001): pending, processing, completed, failed."""
        return _PUBLIC[self]

    @property
    def final(self) -> bool:
        return self in FINAL


PublicStatus = Literal["pending", "processing", "completed", "failed"]
_PUBLIC: dict[JobState, PublicStatus] = {
    JobState.pending: "pending", JobState.submitting: "processing", JobState.waiting: "processing",
    JobState.finishing: "processing", JobState.completed: "completed", JobState.failed: "failed",
}  # fmt: skip
PROCESSING = frozenset({JobState.submitting, JobState.waiting, JobState.finishing})
"""The states clients see as `processing`."""
IN_FLIGHT = frozenset({JobState.pending, *PROCESSING})
"""The states the dispatcher moves a job out of; every other state is final."""
FINAL = frozenset({JobState.completed, JobState.failed})


def state_values(states: Iterable[JobState]) -> list[str]:
    """Column values for `Job.state.in_(…)`, in a stable order."""
    return sorted(JobState(s).value for s in states)


NotificationKind = Literal["ready", "failed"]
"""What a guest notification says: the photo is ready, or (when the event wants it) that it failed."""


class TokenScope(StrEnum):
    event = "event"
    app = "app"
    admin = "admin"


class LedgerReason(StrEnum):
    grant = "grant"
    reserve = "reserve"
    settle = "settle"
    release = "release"
    purchase = "purchase"  # credits of a pack bought through Mercado Pago, once per approved payment
    purchase_reversal = "purchase_reversal"  # the unspent part of a refunded or charged-back purchase


class PurchaseStatus(StrEnum):
    """A purchase's status, as clients see it; `pending` is the only state the reconciler still looks at."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    cancelled = "cancelled"
    refunded = "refunded"
    charged_back = "charged_back"


class Event(SQLModel, table=True):
    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    credits: int = Field(default=0, ge=0)
    granted_total: int = Field(default=0, ge=0)
    # branding for guest pages and messages
    title: str | None = Field(default=None, max_length=200)
    logo_url: str | None = Field(default=None, max_length=1000)
    primary_color: str | None = Field(default=None, max_length=20)
    footer_text: str | None = Field(default=None, max_length=500)
    language: str = Field(default="en", max_length=10)
    # notifications: extra Apprise URLs for every photo (push, kiosk backends) and for organiser alerts
    notify_urls: list[str] = _json(list)
    alert_urls: list[str] = _json(list)
    notify_on_failure: bool = False
    templates: dict[str, str] = _json(dict)
    # guest privacy and moderation (see docs/privacy.md)
    consent_required: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    consent_text: str | None = Field(default=None, max_length=1000)  # what the kiosk asks; None: the default
    moderation: str = Field(default="auto", max_length=10, sa_column_kwargs={"server_default": "auto"})
    max_photos_per_guest: int | None = None  # None: no cap
    retention_days: int | None = None  # results kept this long; None: PHOTOBOT_RESULT_TTL_DAYS
    # the style ids this event offers, in the kiosk's order; empty: every active style of the catalogue
    styles: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False,
                              sa_column_kwargs={"server_default": "[]"})  # fmt: skip
    created_at: datetime = _created()

    __table_args__ = (sa.CheckConstraint("credits >= 0", name="ck_events_credits_nonneg"),)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=200, unique=True)
    credits: int = Field(default=0, ge=0)
    granted_total: int = Field(default=0, ge=0)
    created_at: datetime = _created()

    __table_args__ = (sa.CheckConstraint("credits >= 0", name="ck_users_credits_nonneg"),)


class Style(SQLModel, table=True):
    __tablename__ = "styles"

    id: str = Field(primary_key=True, max_length=64)  # slug such as pb_a
    name: str = Field(max_length=200)
    prompt: str
    model: str = Field(default="nano-banana-pro", max_length=100)
    provider: str | None = Field(default=None, max_length=20)  # None: the configured default
    aspect_ratio: str | None = Field(default=None, max_length=10)
    resolution: str | None = Field(default=None, max_length=10)
    output_format: str | None = Field(default=None, max_length=10)
    cost: int = Field(default=1, ge=0)
    reference_keys: list[str] = _json(list)
    preview_key: str | None = Field(default=None, max_length=300)  # an example image for the kiosk's picker
    active: bool = True
    created_at: datetime = _created()
    updated_at: datetime = _created()


class ProviderKey(SQLModel, table=True):
    __tablename__ = "provider_keys"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=20, index=True)
    secret: str = Field(max_length=500)
    label: str | None = Field(default=None, max_length=200)
    active: bool = True
    last_used_at: datetime | None = _ts()
    cooldown_until: datetime | None = _ts()
    failure_count: int = 0
    disabled_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = _created()

    __table_args__ = (sa.UniqueConstraint("provider", "secret", name="uq_provider_keys_secret"),)

    @property
    def masked(self) -> str:
        return "…" + self.secret[-4:]


class ClientToken(SQLModel, table=True):
    __tablename__ = "client_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)  # sha256 hex; the token itself is never stored
    scope: str = Field(max_length=10)
    event_id: int | None = Field(default=None, foreign_key="events.id")
    label: str | None = Field(default=None, max_length=200)
    created_at: datetime = _created()
    revoked_at: datetime | None = _ts()


class Job(SQLModel, table=True):
    __tablename__ = "jobs"

    id: str = Field(default_factory=new_job_id, primary_key=True, max_length=32)
    public_id: str = Field(default_factory=new_public_id, unique=True, max_length=32)
    event_id: int | None = Field(default=None, foreign_key="events.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    token_id: int | None = Field(default=None, foreign_key="client_tokens.id")
    style_id: str = Field(max_length=64)
    cost: int = 1
    # every generation parameter, for reproducibility
    provider: str = Field(max_length=20)
    model: str = Field(max_length=100)
    prompt: str
    aspect_ratio: str | None = Field(default=None, max_length=10)
    resolution: str | None = Field(default=None, max_length=10)
    output_format: str | None = Field(default=None, max_length=10)
    input_key: str | None = Field(default=None, max_length=300)  # None: a text-to-image job (no photo)
    reference_keys: list[str] = _json(list)
    provider_task_id: str | None = Field(default=None, max_length=200)
    provider_key_id: int | None = Field(default=None, foreign_key="provider_keys.id")
    provider_meta: dict[str, Any] = _json(dict)  # e.g. fal's status_url / response_url
    # state machine
    state: str = Field(default=JobState.pending, max_length=12)
    state_changed_at: datetime | None = _ts()  # when `state` last changed (time-in-state metrics)
    attempts: int = 0
    crashes: int = Field(default=0, sa_column_kwargs={"server_default": "0"})  # unexpected step errors so far
    next_attempt_at: datetime | None = _ts()
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = _ts()
    deadline_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=1000)
    # guest
    guest_id: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=20)
    # idempotency (unique per token)
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str | None = Field(default=None, max_length=64)
    # result
    result_key: str | None = Field(default=None, max_length=300)
    result_content_type: str | None = Field(default=None, max_length=50)
    result_urls: list[str] = _json(list)
    created_at: datetime = _created()
    updated_at: datetime = _created()
    submitted_at: datetime | None = _ts()
    callback_at: datetime | None = _ts()
    completed_at: datetime | None = _ts()
    purged_at: datetime | None = _ts()
    # privacy and moderation
    consent_at: datetime | None = _ts()  # when the guest consented (None: not asked, or did not tick)
    approved_at: datetime | None = _ts()  # an operator approved it for the gallery and live wall
    hidden_at: datetime | None = _ts()  # an operator hid it from the gallery and live wall
    forgotten_at: datetime | None = _ts()  # the guest's data was erased on request (photos, contact, guest id)

    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_task_id", name="uq_jobs_provider_task"),
        sa.UniqueConstraint("token_id", "idempotency_key", name="uq_jobs_idempotency"),
        sa.Index("ix_jobs_due", "state", "next_attempt_at"),
        sa.Index("ix_jobs_task", "provider_task_id"),
        sa.CheckConstraint("(event_id IS NULL) <> (user_id IS NULL)", name="ck_jobs_one_owner"),
    )

    @property
    def job_state(self) -> JobState:
        return JobState(self.state)


def table_of(model: type[SQLModel]) -> sa.Table:
    """The table of a model, typed (SQLModel declares `__table__` only at runtime)."""
    return cast(sa.Table, sa.inspect(model).local_table)


_Model = TypeVar("_Model", bound=SQLModel)


def labelled_columns(model: type[SQLModel], prefix: str) -> list[sa.Label[Any]]:
    """The model's columns named `prefix + column`, to select a second table's row beside another one's."""
    return [column.label(prefix + column.name) for column in table_of(model).c]


def from_row(model: type[_Model], row: Mapping[Any, Any], prefix: str = "") -> _Model:
    """An instance of `model` (outside any session) from a result row holding its columns, named `prefix + column`
    (`labelled_columns`): what a statement run on the driver connection, or a Core `RETURNING`, gives back."""
    return model(**{column.name: row[prefix + column.name] for column in table_of(model).c})


def due_clause(now: datetime | sa.BindParameter[datetime], *, unleased: bool = True) -> sa.ColumnElement[bool]:
    """The one definition of a due job: what the dispatcher claims and what backlog and readiness count.

    A job is due when it is in flight, its `next_attempt_at` has passed — or its deadline has, outside `finishing`
    (the photo exists there: finish does not expire, and its retries keep their backoff) — and, with `unleased`,
    nobody holds a live lease on it.
    """
    clause = sa.and_(
        col(Job.state).in_(state_values(IN_FLIGHT)),
        sa.or_(
            col(Job.next_attempt_at) <= now,
            sa.and_(col(Job.deadline_at) <= now, col(Job.state) != JobState.finishing.value),
        ),
    )
    if unleased:
        clause = sa.and_(clause, sa.or_(col(Job.lease_until).is_(None), col(Job.lease_until) < now))
    return clause


class JobTransition(SQLModel, table=True):
    """History of a job's states, for operators (admin `jobs show`)."""

    __tablename__ = "job_transitions"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="jobs.id", index=True, max_length=32)
    from_state: str | None = Field(default=None, max_length=12)
    to_state: str = Field(max_length=12)
    note: str | None = Field(default=None, max_length=500)
    at: datetime = _created()


class CreditLedger(SQLModel, table=True):
    __tablename__ = "credit_ledger"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int | None = Field(default=None, foreign_key="events.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    job_id: str | None = Field(default=None, foreign_key="jobs.id", max_length=32)
    purchase_id: str | None = Field(default=None, foreign_key="purchases.id", max_length=32, index=True)
    payment_id: str | None = Field(default=None, max_length=64)  # the Mercado Pago payment behind a purchase row
    delta: int
    reason: str = Field(max_length=20)
    note: str | None = Field(default=None, max_length=200)
    created_at: datetime = _created()

    __table_args__ = (
        sa.UniqueConstraint("job_id", "reason", name="uq_ledger_job_reason"),
        # one `purchase` and at most one `purchase_reversal` per payment: "granted once" is a database fact
        sa.UniqueConstraint("reason", "payment_id", name="uq_ledger_reason_payment"),
        sa.CheckConstraint("(event_id IS NULL) <> (user_id IS NULL)", name="ck_ledger_one_account"),
    )


class Pack(SQLModel, table=True):
    """A credit pack on sale: `credits` for `price_cents` (minor units, two decimals) in `currency`."""

    __tablename__ = "packs"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    credits: int = Field(ge=1)
    price_cents: int = Field(ge=1)
    currency: str = Field(max_length=3)
    active: bool = True
    created_at: datetime = _created()


def new_purchase_id() -> str:
    return uuid.uuid4().hex


class Purchase(SQLModel, table=True):
    """One checkout of one pack by one account; `external_reference` at Mercado Pago is this row's id.

    The price and credits are copied from the pack at creation, so a pack changed later never changes what an
    open checkout grants or what amount it must match. Only `payments/purchases.py` changes these rows.
    """

    __tablename__ = "purchases"

    id: str = Field(default_factory=new_purchase_id, primary_key=True, max_length=32)
    pack_id: int = Field(foreign_key="packs.id")
    event_id: int | None = Field(default=None, foreign_key="events.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    token_id: int | None = Field(default=None, foreign_key="client_tokens.id")
    credits: int
    price_cents: int
    currency: str = Field(max_length=3)
    status: str = Field(default=PurchaseStatus.pending, max_length=12)
    preference_id: str | None = Field(default=None, max_length=200)
    checkout_url: str | None = Field(default=None, max_length=1000)
    payment_id: str | None = Field(default=None, max_length=64)  # the payment that decided the status
    payment_status: str | None = Field(default=None, max_length=30)  # Mercado Pago's own word for it
    reversed_credits: int = 0  # taken back after a refund or chargeback
    shortfall: int = 0  # credits already spent when the money went back: could not be taken back
    error_code: str | None = Field(default=None, max_length=64)  # amount_mismatch, duplicate_payment, …
    error_message: str | None = Field(default=None, max_length=500)
    alert_pending: bool = False  # an operator alert is recorded and not yet sent (the reconciler sends it)
    alerted_at: datetime | None = _ts()
    check_attempts: int = 0
    next_check_at: datetime | None = _ts(index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_at: datetime = _created()
    updated_at: datetime = _created()
    approved_at: datetime | None = _ts()

    __table_args__ = (
        sa.Index("ix_purchases_status_check", "status", "next_check_at"),
        sa.CheckConstraint("(event_id IS NULL) <> (user_id IS NULL)", name="ck_purchases_one_owner"),
    )


class WebhookEvent(SQLModel, table=True):
    __tablename__ = "webhook_events"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=20)
    task_id: str = Field(max_length=200)
    outcome: str = Field(max_length=20)  # success | fail
    job_id: str | None = Field(default=None, max_length=32, index=True)
    received_at: datetime = _created()
    payload: dict[str, Any] = _json(dict)

    __table_args__ = (sa.UniqueConstraint("provider", "task_id", "outcome", name="uq_webhook_events_task_outcome"),)


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="jobs.id", max_length=32, index=True)
    channel: str = Field(max_length=64)  # email | whatsapp | push:<n> | ...
    kind: str = Field(default="ready", max_length=20)  # ready | failed
    target: str = Field(max_length=1000)
    state: str = Field(default="pending", max_length=10)  # pending | sending | sent | failed | cancelled
    attempts: int = 0
    next_attempt_at: datetime | None = _ts()
    lease_until: datetime | None = _ts()
    last_error: str | None = Field(default=None, max_length=1000)
    sent_at: datetime | None = _ts()
    created_at: datetime = _created()

    __table_args__ = (
        sa.UniqueConstraint("job_id", "channel", name="uq_notifications_job_channel"),
        sa.Index("ix_notifications_due", "state", "next_attempt_at"),
    )


class CreditAlert(SQLModel, table=True):
    """One row per event and threshold crossed (50, 25, 0 % of granted credits): alerts fire once."""

    __tablename__ = "credit_alerts"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="events.id")
    threshold: int
    state: str = Field(default="pending", max_length=10)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _created()
    sent_at: datetime | None = _ts()

    __table_args__ = (sa.UniqueConstraint("event_id", "threshold", name="uq_credit_alerts_threshold"),)


def new_message_id() -> str:
    """A webhook message's id, the `webhook-id` header: stable across retries, so receivers can dedupe on it."""
    return "msg_" + uuid.uuid4().hex


class WebhookEndpoint(SQLModel, table=True):
    """An operator's URL that hears signed messages (Standard Webhooks); only `outbound/` changes these rows.

    `secret` signs every message; after a rotation `old_secret` signs too (a second signature) until
    `old_secret_until`. With `event_id` the endpoint hears that event's messages only. `failing_since` is the first
    failed attempt since the last success: an endpoint failing long enough is disabled (`disabled_reason`) and
    `alert_pending` asks the delivery loop to tell the operator.
    """

    __tablename__ = "webhook_endpoints"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=100)
    old_secret: str | None = Field(default=None, max_length=100)
    old_secret_until: datetime | None = _ts()
    types: list[str] = _json(list)
    event_id: int | None = Field(default=None, foreign_key="events.id", index=True)
    description: str | None = Field(default=None, max_length=200)
    active: bool = True
    disabled_reason: str | None = Field(default=None, max_length=200)
    failing_since: datetime | None = _ts()
    alert_pending: bool = False
    created_at: datetime = _created()
    updated_at: datetime = _created()


class WebhookMessage(SQLModel, table=True):
    """One thing that happened (`job.completed`, …), written in the transaction that made it happen (the outbox)."""

    __tablename__ = "webhook_messages"

    id: str = Field(default_factory=new_message_id, primary_key=True, max_length=40)
    type: str = Field(max_length=40)
    event_id: int | None = Field(default=None, foreign_key="events.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    data: dict[str, Any] = _json(dict)
    created_at: datetime = _created()


class WebhookDelivery(SQLModel, table=True):
    """One message to one endpoint: the delivery queue (`pending` → `sending` → `delivered` | `failed`)."""

    __tablename__ = "webhook_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(foreign_key="webhook_messages.id", max_length=40, index=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoints.id", index=True)
    state: str = Field(default="pending", max_length=10)
    attempts: int = 0  # attempts of the current schedule (a replay starts a new one)
    next_attempt_at: datetime | None = _ts()
    lease_until: datetime | None = _ts()
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: datetime | None = _ts()
    created_at: datetime = _created()

    __table_args__ = (
        sa.UniqueConstraint("message_id", "endpoint_id", name="uq_webhook_deliveries_message_endpoint"),
        sa.Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    )


class WebhookAttempt(SQLModel, table=True):
    """Each HTTP attempt of a delivery, for operators (`photobot webhooks deliveries`)."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_deliveries.id", index=True)
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int = 0
    at: datetime = _created()


metadata = SQLModel.metadata
