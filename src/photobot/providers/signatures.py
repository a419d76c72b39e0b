"""Callback signatures: kie.ai's optional HMAC and fal.ai's ED25519 over a JWKS.

Both are checks on top of the per-job callback token, not instead of it. kie's HMAC covers only
`"{taskId}.{timestamp}"` (not the body), so it proves the sender knows the key, not that the body is intact:
the result is confirmed with recordInfo later anyway. fal signs `request_id\\nuser_id\\ntimestamp\\nsha256(body)`
with ED25519; the public keys come from a JWKS that rotates, so `JwksCache` caches it (at most 24 h) and
refetches once, rate-limited, when no cached key verifies a signature. Timestamps must be within ±300 s.
Failures raise `SignatureInvalid` with a reason that is safe to log; comparisons are constant-time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from photobot import jsontext
from photobot.providers.errors import CallbackMalformed, SignatureInvalid

log = logging.getLogger(__name__)
TOLERANCE_S = 300


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _check_timestamp(raw: str | None, now: float, tolerance_s: float) -> int:
    if not raw:
        raise SignatureInvalid("missing timestamp header")
    try:
        ts = int(raw.strip())
    except ValueError:
        raise SignatureInvalid("timestamp is not an integer") from None
    if abs(now - ts) > tolerance_s:
        raise SignatureInvalid("timestamp outside the allowed window")
    return ts


# --- kie.ai ---------------------------------------------------------------------------------------------


def kie_signature(key: str, task_id: str, timestamp: int | str) -> str:
    """base64(HMAC-SHA256(key, "{taskId}.{timestamp}")), as kie.ai sends in X-Webhook-Signature."""
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class TaskIdConflict(ValueError):
    """A kie.ai body naming two different task ids: which one a signature covers would be ambiguous."""


def kie_signed_task_id(payload: Any) -> str | None:
    """The one task id of a kie.ai callback: the one the signature covers AND the one the parser acts on.

    kie puts it in `data.taskId` (older bodies: `data.task_id` or a top-level `taskId`). Every place that names one
    must agree, or the body is refused: otherwise a signature seen for one task could carry a body whose
    `data.taskId` (the one acted on) is another's.
    """
    if not isinstance(payload, dict):
        return None
    data: dict[str, Any] = payload["data"] if isinstance(payload.get("data"), dict) else {}
    named = {v for v in (data.get("taskId"), data.get("task_id"), payload.get("taskId")) if isinstance(v, str) and v}
    if len(named) > 1:
        raise TaskIdConflict("the callback names more than one task id")
    return named.pop() if named else None


def verify_kie_hmac(
    key: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance_s: float = TOLERANCE_S,
) -> None:
    """Raise SignatureInvalid unless the headers carry a fresh, valid kie.ai HMAC for the body's task id."""
    h = _lower(headers)
    signature = h.get("x-webhook-signature")
    if not signature:
        raise SignatureInvalid("missing X-Webhook-Signature")
    ts = _check_timestamp(h.get("x-webhook-timestamp"), time.time() if now is None else now, tolerance_s)
    try:
        payload = jsontext.loads(body)
    except jsontext.JSONRefused as exc:
        raise CallbackMalformed(f"callback body refused: {exc.reason}") from None
    try:
        task_id = kie_signed_task_id(payload)
    except TaskIdConflict:
        raise SignatureInvalid("the body names more than one task id") from None
    if task_id is None:
        raise SignatureInvalid("no task id to check the signature against")
    expected = kie_signature(key, task_id, ts)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise SignatureInvalid("signature does not match")


# --- fal.ai ---------------------------------------------------------------------------------------------


def fal_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    return "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()


def jwks_public_keys(jwks: Any) -> list[Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document (OKP / Ed25519, `x` base64url); other keys are ignored."""
    keys = []
    for jwk in (jwks or {}).get("keys", []) if isinstance(jwks, dict) else []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        try:
            x = base64.urlsafe_b64decode(str(jwk["x"]) + "=" * (-len(str(jwk["x"])) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(x))
        except (KeyError, ValueError, binascii.Error):
            continue
    return keys


class JwksCache:
    """fal's webhook public keys, fetched from `url`, kept at most `ttl_s` (24 h), refetched on a miss."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        ttl_s: float = 86400.0,
        refresh_min_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.url = url
        self.ttl_s = min(ttl_s, 86400.0)
        self.refresh_min_s = refresh_min_s
        self.clock = clock
        self._keys: list[Ed25519PublicKey] = []
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def keys(self, *, refresh: bool = False) -> list[Ed25519PublicKey]:
        async with self._lock:
            now = self.clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self.ttl_s
            may_refresh = self._fetched_at is None or now - self._fetched_at >= self.refresh_min_s
            if stale or (refresh and may_refresh):
                await self._fetch(now)
            return list(self._keys)

    async def _fetch(self, now: float) -> None:
        try:
            response = await self.client.get(self.url, timeout=10.0)
            response.raise_for_status()
            keys = jwks_public_keys(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("fal JWKS fetch failed (%s); keeping %d cached keys", type(exc).__name__, len(self._keys))
            if self._fetched_at is None:
                raise SignatureInvalid("cannot load fal.ai webhook keys") from None
            return
        self._keys, self._fetched_at = keys, now
        log.info("fal JWKS loaded: %d keys", len(keys))


async def verify_fal_signature(
    jwks: JwksCache,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance_s: float = TOLERANCE_S,
) -> None:
    """Raise SignatureInvalid unless a key of the JWKS signed this webhook within the time window."""
    h = _lower(headers)
    request_id = h.get("x-fal-webhook-request-id")
    user_id = h.get("x-fal-webhook-user-id")
    signature_hex = h.get("x-fal-webhook-signature")
    if not (request_id and user_id and signature_hex):
        raise SignatureInvalid("missing fal webhook headers")
    timestamp = h.get("x-fal-webhook-timestamp")
    _check_timestamp(timestamp, time.time() if now is None else now, tolerance_s)
    try:
        signature = bytes.fromhex(signature_hex.strip())
    except ValueError:
        raise SignatureInvalid("signature is not hex") from None
    message = fal_message(request_id, user_id, str(timestamp), body)
    for refresh in (False, True):
        for key in await jwks.keys(refresh=refresh):
            try:
                key.verify(signature, message)
                return
            except InvalidSignature:
                continue
    raise SignatureInvalid("no fal.ai key verifies the signature")
