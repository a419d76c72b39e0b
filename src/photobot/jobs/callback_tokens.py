"""Tokenized callback URLs: `/webhooks/{provider}?token=…` binds a job id and a provider, signed and expiring.

The token (itsdangerous `URLSafeTimedSerializer`, HMAC-SHA256) is what makes a callback ours: without it a
request is refused before anything is read from the database. It carries the job id, so a callback that
arrives before the provider's taskId is recorded still finds its job. It expires at the job's deadline plus a
margin; rotated secrets (`PHOTOBOT_OLD_SECRET_KEYS`) keep verifying tokens issued before a rotation.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from itsdangerous import BadData, URLSafeTimedSerializer

EXPIRY_MARGIN_S = 600


class BadToken(Exception):
    """Missing, forged, malformed or expired: the caller answers 401 without saying which."""


@dataclass(frozen=True)
class CallbackClaim:
    job_id: str
    provider: str


class CallbackTokens:
    def __init__(self, secrets: list[str]) -> None:
        # itsdangerous signs with the last key and verifies with any of them.
        self._serializer = URLSafeTimedSerializer(
            list(reversed(secrets)), salt="photobot.callback", signer_kwargs={"digest_method": hashlib.sha256}
        )

    def issue(self, job_id: str, provider: str, deadline_ts: float) -> str:
        return self._serializer.dumps({"j": job_id, "p": provider, "e": int(deadline_ts) + EXPIRY_MARGIN_S})

    def verify(self, token: str | None, provider: str, *, now: float | None = None) -> CallbackClaim:
        if not token:
            raise BadToken("missing")
        try:
            data = self._serializer.loads(token)
        except BadData:
            raise BadToken("bad signature") from None
        if not isinstance(data, dict) or not isinstance(data.get("j"), str) or data.get("p") != provider:
            raise BadToken("wrong shape or provider")
        if int(data.get("e", 0)) < (now if now is not None else time.time()):
            raise BadToken("expired")
        return CallbackClaim(job_id=data["j"], provider=provider)
