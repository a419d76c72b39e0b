"""Signed gallery links: `/e/{event_id}/gallery?sig={expiry}.{signature}`.

The signature (itsdangerous, HMAC-SHA256 keyed by the service secret, salted for this purpose only) covers the
event id and the expiry, so a link opens exactly one event's gallery and cannot be stretched past its time.
An expiry of 0 means "no expiry". Every secret of `settings.secret_keys()` is accepted, the newest signs, so
rotating `PHOTOBOT_SECRET_KEY` (old one in `PHOTOBOT_OLD_SECRET_KEYS`) keeps shared links working.
"""

from __future__ import annotations

from datetime import datetime

from photobot.signing import ExpiringSigner

SALT = "photobot.gallery"


class GallerySigner:
    def __init__(self, secrets: list[str]) -> None:
        self._signer = ExpiringSigner(secrets, salt=SALT)

    def sign(self, event_id: int, expires_at: int = 0) -> str:
        return f"{expires_at}.{self._signer.sign(str(event_id), expires_at)}"

    def verify(self, event_id: int, sig: str | None, *, now: float | None = None) -> bool:
        if not sig or "." not in sig or len(sig) > 200:
            return False
        raw_exp, _, signature = sig.partition(".")
        if not raw_exp.isdigit():
            return False
        return self._signer.verify(str(event_id), int(raw_exp), signature, now=now, never_expires=True)


def gallery_url(base_url: str, secrets: list[str], event_id: int, expires_at: datetime | None = None) -> str:
    exp = int(expires_at.timestamp()) if expires_at is not None else 0
    sig = GallerySigner(secrets).sign(event_id, exp)
    return f"{base_url.rstrip('/')}/e/{event_id}/gallery?sig={sig}"
