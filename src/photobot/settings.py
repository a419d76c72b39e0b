"""Configuration: every knob is a `PHOTOBOT_*` environment variable (also read from `.env`).

One `Settings` object is built at start-up and passed explicitly to whatever needs it; nothing reads the
environment after that. `.env.example` documents every field with its default.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_KIE_RESULT_HOSTS = ("tempfile.aiquickdraw.com", "tempfile.redpandaai.co", "file.kie.ai")
DEFAULT_FAL_RESULT_HOSTS = ("fal.media", "v3.fal.media", "v3b.fal.media", "storage.googleapis.com")


class ProviderName(StrEnum):
    kie = "kie"
    fal = "fal"
    simulator = "simulator"


def _split_csv(value: object) -> object:
    """Accept `a,b,c` (the documented form) as well as a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]
CsvSecrets = Annotated[list[SecretStr], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PHOTOBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    # --- process -------------------------------------------------------------------------------
    env: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    var_dir: Path = Path("var")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    # where guests, kiosks and providers reach this service; empty: the listening address, http://HOST:PORT
    public_base_url: str = ""

    # --- stores --------------------------------------------------------------------------------
    database_url: str = ""  # default: sqlite+aiosqlite under var_dir (see resolved)
    redis_url: str | None = None
    redis_timeout_s: float = Field(0.25, gt=0)
    database_pool_size: int = Field(32, ge=1, le=1000)  # connections per process (PostgreSQL); no overflow
    # photos decoded at once by a worker (processes); empty: one per core; 0: threads instead of processes
    image_workers: int | None = Field(None, ge=0, le=64)
    storage_url: str = ""  # default: file:// under var_dir/media

    # --- secrets -------------------------------------------------------------------------------
    secret_key: SecretStr | None = None
    old_secret_keys: CsvSecrets = Field(default_factory=list)

    # --- providers -----------------------------------------------------------------------------
    provider: ProviderName | None = None  # default: kie when a kie key is configured, else simulator
    kie_api_keys: CsvSecrets = Field(default_factory=list)
    kie_base_url: str = "https://api.kie.ai"
    kie_upload_base_url: str = "https://kieai.redpandaai.co"
    kie_result_hosts: CsvList = Field(default_factory=lambda: list(DEFAULT_KIE_RESULT_HOSTS))
    kie_webhook_hmac_key: SecretStr | None = None
    kie_input_upload: Literal["auto", "always", "never"] = "auto"
    kie_confirm_results: bool = True
    kie_rate_limit: int = Field(20, ge=1)
    kie_rate_window_s: float = Field(10.0, gt=0)
    fal_key: SecretStr | None = None
    fal_queue_url: str = "https://queue.fal.run"
    fal_rest_url: str = "https://rest.fal.ai"
    fal_jwks_url: str = "https://rest.alpha.fal.ai/.well-known/jwks.json"
    fal_result_hosts: CsvList = Field(default_factory=lambda: list(DEFAULT_FAL_RESULT_HOSTS))
    fal_model: str = "fal-ai/nano-banana-pro/edit"
    provider_connect_timeout_s: float = Field(5.0, gt=0)
    provider_timeout_s: float = Field(30.0, gt=0)
    allow_private_networks: bool = False

    # --- simulator (the stand-in for kie.ai) ---------------------------------------------------
    simulator_port: int = Field(0, ge=0, le=65535)  # 0: pick a free port when run in-process
    simulator_callback_delay_s: float = Field(2.0, ge=0)

    # --- jobs ----------------------------------------------------------------------------------
    job_timeout_s: int = Field(300, ge=10)
    reconcile_after_s: int = Field(45, ge=1)
    # a step that raises an unexpected error backs off (this base, doubling, capped at 300 s) and after this many
    # crashes the job fails with internal_error (credit released)
    step_crash_limit: int = Field(5, ge=1, le=100)
    step_crash_backoff_s: float = Field(2.0, gt=0, le=300)
    max_image_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=1)
    max_long_side: int = Field(2048, ge=64)
    max_result_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    submit_rate_limit: str = "60/minute"
    callback_rate_limit: str = "6000/minute"  # per client address: providers call from few addresses
    callback_job_rate_limit: str = "60/minute"  # per job: a flood for one job never reaches the database
    worker_concurrency: int = Field(16, ge=1)
    lease_s: int = Field(60, ge=5)
    poll_interval_s: float = Field(1.0, gt=0)
    signed_url_ttl_s: int = Field(3600, ge=60)
    result_ttl_days: int = Field(30, ge=1)
    input_ttl_hours: int = Field(24, ge=1)

    # --- operations ----------------------------------------------------------------------------
    ready_max_backlog_s: float = Field(120.0, gt=0)  # /readyz fails when a due job waited longer
    drain_s: float = Field(0.0, ge=0, le=300)  # on SIGTERM: answer /readyz 503 this long before stopping
    worker_metrics_port: int = Field(0, ge=0, le=65535)  # `photobot worker`: serve /metrics here (0: off)

    # --- payments (Mercado Pago Checkout Pro; docs/payments.md) -------------------------------------
    mercadopago_access_token: SecretStr | None = None  # unset: the built-in Mercado Pago simulator
    mercadopago_webhook_secret: SecretStr | None = None  # the application's "secret signature" (x-signature)
    mercadopago_base_url: str = "https://api.mercadopago.com"
    mercadopago_signature_tolerance_s: int = Field(600, ge=1)  # how old a notification's `ts` may be
    mercadopago_reconcile_after_s: int = Field(300, ge=1)  # a pending purchase older than this is looked up
    purchase_expiry_s: int = Field(86400, ge=60)  # a purchase still pending this long is cancelled
    purchase_rate_limit: str = "30/minute"  # purchases created per client token
    mercadopago_webhook_rate_limit: str = "600/minute"  # notifications per client address
    operator_alert_urls: CsvSecrets = Field(default_factory=list)  # Apprise URLs for payment and webhook alerts

    # --- outbound webhooks (Standard Webhooks; docs/webhooks.md) --------------------------------------
    # seconds before each attempt of one message to one endpoint (the first is 0: at once), with jitter
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    webhook_timeout_s: float = Field(15.0, gt=0, le=60)  # a 2xx within this long is a success
    webhook_disable_after_s: int = Field(5 * 86400, ge=60)  # an endpoint failing this long is disabled
    webhook_secret_overlap_s: int = Field(86400, ge=0)  # after rotate-secret the old secret still signs this long

    # --- notifications -------------------------------------------------------------------------
    smtp_url: SecretStr | None = None
    whatsapp_token: SecretStr | None = None
    whatsapp_from: str | None = None
    whatsapp_template: str | None = None

    @field_validator(
        "old_secret_keys", "kie_api_keys", "operator_alert_urls", "kie_result_hosts", "fal_result_hosts", mode="before"
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _retry_schedule(cls, value: object) -> object:
        """`0,5,300`: seconds, each from 0 to a week, the first 0; at least one attempt, at most 50."""
        items = _split_csv(value)
        if not isinstance(items, list) or not 1 <= len(items) <= 50:
            raise ValueError("must be 1 to 50 comma-separated numbers of seconds, e.g. 0,5,300")
        try:
            delays = [float(item) for item in items]
        except (TypeError, ValueError):
            raise ValueError("must be comma-separated numbers of seconds, e.g. 0,5,300") from None
        if any(not 0 <= d <= 7 * 86400 for d in delays):  # NaN fails this too
            raise ValueError("each delay must be between 0 and 604800 seconds")
        if delays[0] != 0:
            raise ValueError("the first delay must be 0: a message's first attempt is made as soon as it is written")
        return delays

    @field_validator(
        "public_base_url",
        "kie_base_url",
        "kie_upload_base_url",
        "fal_queue_url",
        "fal_rest_url",
        "mercadopago_base_url",
    )
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "public_base_url" and not value:
            return value  # follows the listening address (see `_follow_listener`)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("file", "s3"):
            raise ValueError("must start with file:// or s3://")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")
        return value

    @model_validator(mode="after")
    def _follow_listener(self) -> Settings:
        """One source of truth for the public address: unless PHOTOBOT_PUBLIC_BASE_URL is set, every link, QR
        code and provider callback (in the server and in every CLI command) is built from the address the server
        listens on, so PHOTOBOT_PORT alone moves them all."""
        if not self.public_base_url:
            self.public_base_url = listening_url(self.host, self.port)
            self._base_url_follows_listener = True
        return self

    @model_validator(mode="after")
    def _production_needs_secret(self) -> Settings:
        if self.env == "production" and self.secret_key is None:
            raise ValueError("PHOTOBOT_SECRET_KEY is required when PHOTOBOT_ENV=production")
        return self

    # --- derived values ------------------------------------------------------------------------
    _base_url_follows_listener: bool = PrivateAttr(default=False)

    @property
    def public_base_url_source(self) -> str:
        """Where `public_base_url` came from, for the start-up lines."""
        if self._base_url_follows_listener:
            return "PHOTOBOT_PUBLIC_BASE_URL unset: the listening address"
        return "PHOTOBOT_PUBLIC_BASE_URL"

    @property
    def resolved_database_url(self) -> str:
        url = self.database_url or f"sqlite+aiosqlite:///{self.var_dir / 'photobot.db'}"
        if url.startswith("postgresql://"):
            url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
        if url.startswith("sqlite://"):
            url = "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
        return url

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.var_dir / 'media').resolve()}"

    @property
    def resolved_provider(self) -> ProviderName:
        if self.provider is not None:
            return self.provider
        return ProviderName.kie if self.kie_api_keys else ProviderName.simulator

    def secret_keys(self) -> list[str]:
        """The signing secrets, newest first (itsdangerous tries each; the first signs)."""
        current = self.secret_key.get_secret_value() if self.secret_key else self._dev_secret()
        return [current, *(s.get_secret_value() for s in self.old_secret_keys)]

    def _dev_secret(self) -> str:
        """A generated key persisted under var/ so restarts keep signed links valid (development only)."""
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


def listening_url(host: str, port: int) -> str:
    """The URL of a server listening on host:port; a wildcard address (0.0.0.0, ::) is reached on loopback."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class SettingsError(Exception):
    """A configuration value is wrong; the message names the variable in one line."""


def load_settings(*, env_file: str | None = ".env", **overrides: Any) -> Settings:
    """Build settings from the environment (and `env_file`), turning validation errors into one line."""
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = "_".join(str(p) for p in first["loc"]).upper()
        name = f"PHOTOBOT_{loc}" if loc else "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"{name}: {message}") from None
