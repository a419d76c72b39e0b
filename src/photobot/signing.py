"""Signed, expiring links: one HMAC-SHA256 signer (itsdangerous) over `(subject, expiry)`, with rotation.

Media links sign a storage key, gallery links an event id; both need the same two properties: the link can be
neither altered nor stretched past its expiry, and rotating `PHOTOBOT_SECRET_KEY` (the old one kept in
`PHOTOBOT_OLD_SECRET_KEYS`) keeps links signed before the rotation working. Each use has its own salt, so a
signature made for one purpose is worthless for another.
"""

from __future__ import annotations

import hashlib
import time

from itsdangerous import BadSignature, Signer


class ExpiringSigner:
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
