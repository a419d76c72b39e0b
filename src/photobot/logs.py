"""Logging: JSON lines (or readable lines in a terminal), context ids on every line, secrets redacted.

Redaction is a logging filter on every handler, so it also covers uvicorn's access log (where callback
tokens would otherwise appear in the request line) and third-party libraries. It removes:
query values of `token`, `sig`, `signature` and S3 presign parameters, bearer tokens, our client tokens
(`pbt_…`), e-mail addresses, phone numbers, and the exact values of every configured secret.
Context (request id, job id, task id, event id) travels in contextvars: `bind(job_id=…)`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from photobot.settings import Settings

CONTEXT_FIELDS = ("request_id", "job_id", "task_id", "event_id")
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("photobot_log_context", default={})  # noqa: B039

REDACTED = "[redacted]"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"(?i)\b(token|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|"
            r"api_key|apikey|key|secret|password)=([^&\s\"'#]+)"
        ),
        r"\1=" + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    (re.compile(r"\b(Key)\s+[A-Za-z0-9._~+/=:-]{16,}"), r"\1 " + REDACTED),  # fal's "Authorization: Key …"
    (re.compile(r"pbt_[A-Za-z0-9_-]{8,}"), "pbt_" + REDACTED),
    (re.compile(r"(?i)(mailtos?://)[^\s\"']+"), r"\1" + REDACTED),
    (re.compile(r"(?i)(whatsapp://)[^\s\"']+"), r"\1" + REDACTED),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
    (re.compile(r"(?<![\w/=.-])\+[1-9]\d{7,14}\b"), "[phone]"),
]


class Redactor:
    """Removes secrets from text: known secret values first, then the patterns above."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self.secrets = sorted({s for s in (secrets or []) if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def collect_secrets(settings: Settings) -> list[str]:
    values = [*settings.secret_keys(), *(k.get_secret_value() for k in settings.kie_api_keys)]
    for field in ("kie_webhook_hmac_key", "fal_key", "smtp_url", "whatsapp_token"):
        value = getattr(settings, field)
        if value is not None:
            values.append(value.get_secret_value())
    return values


class RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = self.redactor(message)
        record.args = None
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD and isinstance(value, str):
                record.__dict__[name] = self.redactor(value)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redactor(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        for key, value in _context.get().items():
            record.__dict__.setdefault(key, value)
        return True


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_") and name not in ("color_message",):
                data[name] = value
        if record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data, default=str)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_") and k != "color_message"
        )
        line = (
            f"{datetime.fromtimestamp(record.created).strftime('%H:%M:%S')} {record.levelname:<7} "
            f"{record.name}: {record.getMessage()}"
        )
        if extras:
            line += f"  [{extras}]"
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Attach fields (job_id=…, task_id=…) to every log line emitted inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def _formatter_name(settings: Settings) -> str:
    if settings.log_format == "auto":
        return "console" if sys.stderr.isatty() else "json"
    return settings.log_format


def logging_dict(settings: Settings) -> dict[str, Any]:
    """A dictConfig for our loggers and uvicorn's, all through the redacting filter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactingFilter, "redactor": Redactor(collect_secrets(settings))}},
        "formatters": {
            "json": {"()": JSONFormatter},
            "console": {"()": ConsoleFormatter},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": _formatter_name(settings),
                "filters": ["redact"],
            }
        },
        "root": {"handlers": ["default"], "level": settings.log_level},
        "loggers": {
            # uvicorn's own lines follow PHOTOBOT_LOG_LEVEL like ours: at WARNING a busy callback endpoint writes
            # no access line per request (and `access_log_enabled` lets uvicorn skip formatting them at all).
            "uvicorn": {"handlers": ["default"], "level": settings.log_level, "propagate": False},
            "uvicorn.error": {"level": settings.log_level},
            "uvicorn.access": {"handlers": ["default"], "level": settings.log_level, "propagate": False},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            "botocore": {"level": "WARNING"},
            "aiobotocore": {"level": "WARNING"},
            "aiosqlite": {"level": "WARNING"},
            "apprise": {"level": "WARNING"},
            "asyncio": {"level": "WARNING"},
        },
    }


def configure_logging(settings: Settings) -> None:
    import logging.config

    logging.config.dictConfig(logging_dict(settings))


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    return logging_dict(settings)


def access_log_enabled(settings: Settings) -> bool:
    """uvicorn writes access lines at INFO: above that level it need not build them (its `access_log=False`)."""
    return settings.log_level in ("DEBUG", "INFO")
