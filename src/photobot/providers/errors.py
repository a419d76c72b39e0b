"""Provider errors: one exception type with a stable code, a transient flag and what it says about the key.

The dispatcher branches on three things only: `transient` (retry later with backoff, or fail the job),
`key_effect` (what the key pool must do with the key that was used) and `code` (stored on the job and shown to
clients). Provider codes (kie's body `code`, fal's HTTP status) are mapped here once, so adapters never invent
their own classification. Messages are built from provider text we do not control, so `safe_message` strips
anything that looks like a bearer token before it can reach a log line or a job row.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

KeyEffect = Literal["disable", "exhausted", "cooldown"]

# Stable error codes (stored on jobs, shown to clients).
AUTH = "provider_auth"
NO_CREDITS = "provider_no_credits"
KEY_LIMIT = "provider_key_limit"
RATE_LIMITED = "provider_rate_limited"
VALIDATION = "provider_validation"
MAINTENANCE = "provider_maintenance"
SERVER_ERROR = "provider_server_error"
TIMEOUT = "provider_timeout"
GENERATION_FAILED = "provider_generation_failed"
FEATURE_DISABLED = "provider_feature_disabled"
NETWORK = "provider_network"
BAD_RESPONSE = "provider_bad_response"
NOT_FOUND = "provider_not_found"
NO_KEY = "provider_no_key"
CONTENT_BLOCKED = "content_blocked"  # the provider's safety checks refused the photo or the prompt

# How providers word a content refusal. kie.ai reports it as a task failure (failCode "422" with a message about
# prohibited or sensitive content; the wording is not documented), fal.ai as HTTP 422 or a webhook error whose
# detail entries have `type: content_policy_violation` ("The content was flagged by a content checker").
_REFUSAL = re.compile(
    r"(?i)prohibit|content[ _-]?polic|sensitive|nsfw|not safe for work|unsafe|safety|flagged|moderat|inappropriate"
)
CONTENT_POLICY_TYPE = "content_policy_violation"

_SECRETISH = re.compile(r"(?i)(bearer|key)\s+[A-Za-z0-9._:\-]{6,}|[A-Za-z0-9_\-]{32,}")


def safe_message(text: object, limit: int = 300) -> str:
    """Provider text made safe to log: secrets-looking runs removed, one line, bounded length."""
    message = " ".join(str(text).split())
    message = _SECRETISH.sub(lambda m: m.group(0)[:4] + "…" if len(m.group(0)) >= 32 else "[redacted]", message)
    return message[:limit]


def is_content_refusal(code: str | int | None, message: str | None) -> bool:
    """Whether a provider's failure (its code and message) means its safety checks refused the content: retrying
    is pointless and the guest should be told kindly (error code `content_blocked`)."""
    if str(code or "").lower() == CONTENT_POLICY_TYPE:
        return True
    return bool(message) and _REFUSAL.search(message or "") is not None


class ProviderError(Exception):
    """A provider call failed. `str()` is safe to log; it never contains a key."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool,
        provider_code: int | None = None,
        key_effect: KeyEffect | None = None,
        retry_after: float | None = None,
        max_retries: int | None = None,
        field: str | None = None,
    ) -> None:
        self.code = code
        self.field = field  # the offending request field, for validation errors
        self.message = safe_message(message)
        self.transient = transient
        self.provider_code = provider_code
        self.key_effect = key_effect
        self.retry_after = retry_after
        # None: the retry policy's own cap; 1 for kie's 501 ("fatal, at most one retry").
        self.max_retries = max_retries
        super().__init__(f"{code}: {self.message}")

    def __repr__(self) -> str:
        return (
            f"ProviderError(code={self.code!r}, provider_code={self.provider_code!r}, "
            f"transient={self.transient!r}, key_effect={self.key_effect!r})"
        )

    @property
    def retryable(self) -> bool:
        return self.transient or bool(self.max_retries)


class NoKeyAvailable(ProviderError):
    """Every key is disabled, exhausted or cooling down: the job waits (is not failed) until `retry_at`."""

    def __init__(self, provider: str, retry_at: datetime) -> None:
        super().__init__(NO_KEY, f"no usable {provider} API key; retry at {retry_at.isoformat()}", transient=True)
        self.provider = provider
        self.retry_at = retry_at


# kie.ai body codes → (stable code, transient, key effect, max retries). See reference/providers.md.
_KIE_CODES: dict[int, tuple[str, bool, KeyEffect | None, int | None]] = {
    401: (AUTH, False, "disable", None),
    402: (NO_CREDITS, False, "exhausted", None),
    404: (NOT_FOUND, False, None, None),
    408: (TIMEOUT, True, None, None),
    422: (VALIDATION, False, None, None),
    429: (RATE_LIMITED, True, "cooldown", None),
    433: (KEY_LIMIT, False, "exhausted", None),
    455: (MAINTENANCE, True, None, None),
    500: (SERVER_ERROR, True, None, None),
    501: (GENERATION_FAILED, False, None, 1),
    505: (FEATURE_DISABLED, False, None, None),
}


def classify_kie(code: int, message: str, *, retry_after: float | None = None) -> ProviderError:
    """Map a kie.ai envelope code (or HTTP status when the body has none) to a ProviderError."""
    if code == 422 and is_content_refusal(code, message):
        return ProviderError(CONTENT_BLOCKED, message, transient=False, provider_code=code)
    if code in _KIE_CODES:
        stable, transient, effect, retries = _KIE_CODES[code]
    elif code >= 500:
        stable, transient, effect, retries = SERVER_ERROR, True, None, None
    elif code == 403:
        stable, transient, effect, retries = AUTH, False, "disable", None
    else:
        stable, transient, effect, retries = BAD_RESPONSE, False, None, None
    return ProviderError(
        stable,
        message or f"kie.ai answered code {code}",
        transient=transient,
        provider_code=code,
        key_effect=effect,
        retry_after=retry_after,
        max_retries=retries,
    )


def classify_fal(status: int, message: str, *, retry_after: float | None = None) -> ProviderError:
    """Map a fal.ai HTTP status to a ProviderError (fal has no body codes; 403 also means a locked account)."""
    if status in (400, 422) and is_content_refusal(None, message):
        return ProviderError(CONTENT_BLOCKED, message, transient=False, provider_code=status)
    table: dict[int, tuple[str, bool, KeyEffect | None]] = {
        400: (VALIDATION, False, None),
        401: (AUTH, False, "disable"),
        402: (NO_CREDITS, False, "exhausted"),
        403: (NO_CREDITS, False, "exhausted"),
        404: (NOT_FOUND, False, None),
        408: (TIMEOUT, True, None),
        422: (VALIDATION, False, None),
        429: (RATE_LIMITED, True, "cooldown"),
    }
    if status in table:
        stable, transient, effect = table[status]
    elif status >= 500:
        stable, transient, effect = SERVER_ERROR, True, None
    else:
        stable, transient, effect = BAD_RESPONSE, False, None
    return ProviderError(
        stable,
        message or f"fal.ai answered HTTP {status}",
        transient=transient,
        provider_code=status,
        key_effect=effect,
        retry_after=retry_after,
    )


def network_error(exc: BaseException) -> ProviderError:
    """Timeouts and connection failures are transient; the exception text is reduced to its type name."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(TIMEOUT, f"provider call timed out ({type(exc).__name__})", transient=True)
    return ProviderError(NETWORK, f"provider unreachable ({type(exc).__name__})", transient=True)


def bad_response(message: str) -> ProviderError:
    """The provider answered something we cannot read: transient, it is usually a proxy or an outage page."""
    return ProviderError(BAD_RESPONSE, message, transient=True)


class CallbackRejected(ValueError):
    """An inbound callback we will not act on. `reason` is stable: answer 400/401 and log it."""

    reason = "rejected"


class CallbackMalformed(CallbackRejected):
    """The body is not JSON (or not a JSON object)."""

    reason = "malformed_json"


class CallbackUnknownShape(CallbackRejected):
    """Valid JSON, but not a payload we know (no task id, unknown state)."""

    reason = "unknown_shape"


class SignatureInvalid(CallbackRejected):
    """The provider signature is missing, stale or does not verify."""

    reason = "bad_signature"


def invalid_request(field: str, message: str) -> ProviderError:
    """A request that fails validation before any call: fatal, with the offending field name."""
    return ProviderError(VALIDATION, f"{field}: {message}", transient=False, field=field)
