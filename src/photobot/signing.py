"""Every keyed token and signature the service hands out, in one place.

| what | form | used by |
|---|---|---|
| client bearer tokens | `pbt_<43 url-safe chars>`, stored as SHA-256 only | kiosks, apps, admins (`web/auth.py`) |
| callback tokens | itsdangerous timed serializer over (job id, provider, expiry) | `/webhooks/{provider}?token=…` |
| media links | HMAC over (storage key, expiry, filename) | `/media/{key}?exp=…&sig=…` (local storage) |
| gallery links | HMAC over (event id, expiry) | `/e/{event_id}/gallery?sig={expiry}.{signature}` |
| Mercado Pago notifications | `x-signature: ts=…,v1=…`: HMAC-SHA256, webhook secret | `/webhooks/mercadopago` |
| reach probes | HMAC over a caller's nonce | `GET /healthz` with `X-Photobot-Probe` (start-up callback check) |
| outbound webhooks | `webhook-signature: v1,<base64>` (Standard Webhooks), one per live endpoint secret | `outbound/` |

Our own keyed values use HMAC-SHA256 (itsdangerous) with `Settings.secret_keys()`: the newest secret signs, every
secret verifies, so rotating `PHOTOBOT_SECRET_KEY` (the old one kept in `PHOTOBOT_OLD_SECRET_KEYS`) keeps what was
issued before the rotation working. Each purpose has its own salt, so a signature made for one purpose is
worthless for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadData, BadSignature, Signer, URLSafeTimedSerializer
from standardwebhooks import Webhook

# --- client bearer tokens --------------------------------------------------------------------------------------
TOKEN_PREFIX = "pbt_"  # noqa: S105 - a public prefix (easy to spot and redact), not a secret


def generate_token() -> str:
    """A new client token; the database only ever stores `hash_token` of it."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- expiring signatures (media and gallery links) -----------------------------------------------------------------
class ExpiringSigner:
    """Signs `(subject, expiry)`: the subject can be neither altered nor kept past its expiry."""

    def __init__(self, secrets: list[str], *, salt: str) -> None:
        # The first secret (the current one) signs; every secret verifies.
        self._signers = [Signer(s, salt=salt, digest_method=hashlib.sha256) for s in secrets]

    def sign(self, subject: str, expires_at: int) -> str:
        return self._signers[0].get_signature(f"{subject}|{expires_at}").decode()

    def verify(
        self, subject: str, expires_at: int, signature: str, *, now: float | None = None, never_expires: bool = False
    ) -> bool:
        """True for a valid signature whose expiry has not passed (`expires_at` 0 never expires if allowed)."""
        if not (never_expires and expires_at == 0) and expires_at < (now if now is not None else time.time()):
            return False
        value = f"{subject}|{expires_at}".encode()
        for signer in self._signers:
            try:
                if signer.verify_signature(value, signature.encode()):
                    return True
            except BadSignature:
                continue
        return False


class MediaSigner(ExpiringSigner):
    """Signs `(storage key, expiry)` pairs for local-storage media links — and the download name when the link
    has one, so a holder of a photo link cannot re-share it to download from the booth's domain as `invoice.exe`."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(secrets, salt="photobot.web.media")

    @staticmethod
    def subject(key: str, filename: str | None) -> str:
        """What a link signs: the key alone (links without a name), or key and name, unambiguously joined."""
        return key if filename is None else json.dumps([key, filename])


class GallerySigner:
    """`{expiry}.{signature}` over an event id: opens exactly one event's gallery; expiry 0 never expires."""

    def __init__(self, secrets: list[str]) -> None:
        self._signer = ExpiringSigner(secrets, salt="photobot.gallery")

    def sign(self, event_id: int, expires_at: int = 0) -> str:
        return f"{expires_at}.{self._signer.sign(str(event_id), expires_at)}"

    def verify(self, event_id: int, sig: str | None, *, now: float | None = None) -> bool:
        if not sig or "." not in sig or len(sig) > 200:
            return False
        raw_exp, _, signature = sig.partition(".")
        if not raw_exp.isdigit():
            return False
        return self._signer.verify(str(event_id), int(raw_exp), signature, now=now, never_expires=True)


# --- callback tokens -------------------------------------------------------------------------------------------------
CALLBACK_EXPIRY_MARGIN_S = 600


# --- reach probes ----------------------------------------------------------------------------------------------
PROBE_HEADER = "X-Photobot-Probe"


class ReachProbe:
    """Does an address reach a Photobot that holds our secret, i.e. one that would accept the callback tokens we
    hand to providers? The caller sends a random nonce in `X-Photobot-Probe` to `/healthz`; a Photobot answers
    with an HMAC of it in the same header. Another service on that port, or a Photobot with another secret (whose
    token check would refuse every callback), cannot answer. A challenge, not a fingerprint: nothing stable about
    the secret is ever shown."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = [s.encode() for s in secrets]

    @staticmethod
    def nonce() -> str:
        return secrets.token_urlsafe(16)

    def answer(self, nonce: str) -> str:
        return self._mac(self._secrets[0], nonce[:64])

    def verify(self, nonce: str, answer: str | None) -> bool:
        return bool(answer) and any(hmac.compare_digest(self._mac(k, nonce), answer or "") for k in self._secrets)

    @staticmethod
    def _mac(key: bytes, nonce: str) -> str:
        return hmac.new(key, b"photobot.reach:" + nonce.encode(), hashlib.sha256).hexdigest()


class BadToken(Exception):
    """Missing, forged, malformed or expired: the caller answers 401 without saying which."""


@dataclass(frozen=True)
class CallbackClaim:
    job_id: str
    provider: str


class CallbackTokens:
    """`/webhooks/{provider}?token=…`: binds a job id and a provider, signed, expiring at the job's deadline plus a
    margin. It carries the job id, so a callback that arrives before the provider's task id is recorded still finds
    its job; without it a request is refused before anything is read from the database."""

    def __init__(self, secrets: list[str]) -> None:
        # itsdangerous signs with the last key and verifies with any of them.
        self._serializer = URLSafeTimedSerializer(
            list(reversed(secrets)), salt="photobot.callback", signer_kwargs={"digest_method": hashlib.sha256}
        )
        # what `loads` builds on every call (a callback is verified on every request): made once
        self._unsigner = self._serializer.make_signer()

    def issue(self, job_id: str, provider: str, deadline_ts: float) -> str:
        return self._serializer.dumps({"j": job_id, "p": provider, "e": int(deadline_ts) + CALLBACK_EXPIRY_MARGIN_S})

    def verify(self, token: str | None, provider: str, *, now: float | None = None) -> CallbackClaim:
        if not token:
            raise BadToken("missing")
        try:
            data = self._serializer.load_payload(self._unsigner.unsign(token))
        except BadData:
            raise BadToken("bad signature") from None
        if not isinstance(data, dict) or not isinstance(data.get("j"), str) or data.get("p") != provider:
            raise BadToken("wrong shape or provider")
        if int(data.get("e", 0)) < (now if now is not None else time.time()):
            raise BadToken("expired")
        return CallbackClaim(job_id=data["j"], provider=provider)


# --- Mercado Pago notifications ---------------------------------------------------------------------------------
def mercadopago_manifest(data_id: str, request_id: str, ts: str) -> str:
    """The string Mercado Pago signs: `id:{data.id};request-id:{x-request-id};ts:{ts};` (trailing `;` included).

    `data.id` is lowercased when alphanumeric (payment ids are digits; other resources use upper-case letters)."""
    if data_id.isalnum():
        data_id = data_id.lower()
    return f"id:{data_id};request-id:{request_id};ts:{ts};"


def mercadopago_signature(secret: str, data_id: str, request_id: str, ts: str) -> str:
    """The `x-signature` header value for a notification (what Mercado Pago, and our simulator, send)."""
    digest = hmac.new(secret.encode(), mercadopago_manifest(data_id, request_id, ts).encode(), hashlib.sha256)
    return f"ts={ts},v1={digest.hexdigest()}"


def _ts_seconds(ts: str) -> float:
    """`ts` in seconds: Mercado Pago has sent both seconds and milliseconds since the epoch."""
    value = int(ts)
    return value / 1000 if value > 10**11 else float(value)


def verify_mercadopago_signature(
    secret: str,
    header: str | None,
    data_id: str,
    request_id: str | None,
    *,
    tolerance_s: float,
    now: float | None = None,
) -> bool:
    """True when `x-signature` carries a `v1` HMAC over this `data.id` and `x-request-id`, with a `ts` within
    `tolerance_s` of now (either side: clocks drift). Compared in constant time; any malformed part is False."""
    if not header or len(header) > 300 or not data_id or len(data_id) > 100 or request_id is None:
        return False
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts[key.strip()] = value.strip()
    ts, v1 = parts.get("ts", ""), parts.get("v1", "")
    if not ts.isdigit() or len(ts) > 16 or not v1:
        return False
    if abs((now if now is not None else time.time()) - _ts_seconds(ts)) > tolerance_s:
        return False
    expected = mercadopago_signature(secret, data_id, request_id, ts).rpartition("v1=")[2]
    return hmac.compare_digest(expected, v1.lower())


# --- outbound webhooks (Standard Webhooks 1.0) ------------------------------------------------------------------
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's public prefix, not a secret


def generate_webhook_secret() -> str:
    """A new endpoint secret: `whsec_` + base64 of 32 random bytes (what the spec and its libraries expect)."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_signature(secrets_: list[str], msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header: `v1,<base64>` per secret, space-separated (newest first).

    Signed with the `standardwebhooks` library itself, so what receivers verify with it is exactly what we send;
    several signatures are how the spec lets a receiver still holding the old secret verify during a rotation."""
    at = datetime.fromtimestamp(timestamp, UTC)
    return " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets_)
