"""The public address of everything the service hands out: job status, guest pages, QR codes, galleries and the
provider callback URL, Mercado Pago's notification and back URLs.

Every absolute URL is built here from one base (`Settings.public_base_url`), so the kiosk's QR code, the guest's
e-mail, the provider's callback and the CLI's gallery link can never disagree about where this service lives.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from photobot.signing import GallerySigner


class JobLinks(TypedDict):
    status_url: str
    page_url: str
    qr_url: str


def page_url(base_url: str, public_id: str) -> str:
    """The guest's page (what the QR code on the kiosk opens)."""
    return f"{base_url.rstrip('/')}/p/{public_id}"


def job_links(base_url: str, job_id: str, public_id: str) -> JobLinks:
    base = base_url.rstrip("/")
    page = page_url(base, public_id)
    return {"status_url": f"{base}/v1/jobs/{job_id}", "page_url": page, "qr_url": f"{page}/qr.png"}


def callback_url(base_url: str, provider: str, token: str) -> str:
    """Where the provider reports back; the token binds the job and the provider (see `signing.CallbackTokens`)."""
    return f"{base_url.rstrip('/')}/webhooks/{provider}?token={token}"


def mercadopago_notification_url(base_url: str) -> str:
    """Mercado Pago's `notification_url` for every preference we create (signed by `x-signature`, no token)."""
    return f"{base_url.rstrip('/')}/webhooks/mercadopago"


def purchase_result_url(base_url: str, purchase_id: str) -> str:
    """The back URL a buyer returns to from the checkout: a small page following the purchase's status."""
    return f"{base_url.rstrip('/')}/purchases/{purchase_id}/result"


def gallery_url(base_url: str, secrets: list[str], event_id: int, expires_at: datetime | None = None) -> str:
    """The signed link to an event's gallery; without `expires_at` it never expires (rotate the secret to revoke)."""
    exp = int(expires_at.timestamp()) if expires_at is not None else 0
    sig = GallerySigner(secrets).sign(event_id, exp)
    return f"{base_url.rstrip('/')}/e/{event_id}/gallery?sig={sig}"
