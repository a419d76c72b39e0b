"""Masking of personal data (guest email and phone) and secrets in anything we log or store as an error.

Email addresses and phone numbers are personal data: no log line may carry them whole. Our own log lines call
`mask_email` / `mask_phone` explicitly; text we do not control (Apprise's log records, its captured errors)
goes through a `Scrubber`, which finds addresses and numbers by pattern and also blanks out known secrets
(the SMTP password, the WhatsApp token).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
# an international number (+ and at least 7 digits, with the usual separators) or 9+ bare digits in a row;
# dates and times ("2026-11-22 00:23:40") do not match
_PHONE = re.compile(r"(?<![\w+])(?:\+\d(?:[\s().\-]?\d){6,}|\d{9,15})(?![\w])")
_URL_QUOTED_PLUS = re.compile(r"%2B(?=\d{8,})", re.IGNORECASE)


def mask_email(address: str | None) -> str:
    """`guest@example.com` → `g***@e***.com`: enough to tell two guests apart in support, not to write to them."""
    if not address:
        return ""
    local, _, domain = address.strip().rpartition("@")
    if not local or not domain:
        return "***"
    name, _, tld = domain.rpartition(".")
    if not name:
        name, tld = domain, ""
    masked_domain = f"{name[:1]}***" + (f".{tld}" if tld else "")
    return f"{local[:1]}***@{masked_domain}"


def mask_phone(number: str | None) -> str:
    """`+628123456789` → `+62******789`: country prefix and last three digits, a fixed-width mask between."""
    if not number:
        return ""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 6:
        return "***"
    prefix = "+" if number.strip().startswith("+") else ""
    return f"{prefix}{digits[:2]}******{digits[-3:]}"


class Scrubber:
    """Masks emails, phone numbers and the given secrets in free text (log messages, stored errors)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _URL_QUOTED_PLUS.sub("+", text)
        text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
        return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


scrub = Scrubber()


class ScrubFilter(logging.Filter):
    """A logging filter that rewrites each record's message through a Scrubber.

    Installed on Apprise's logger, whose plugins log recipients in clear ("Sent Email to guest@…").
    """

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to complain
            return True
        record.msg = self.scrubber(message)
        record.args = None
        return True


def install_scrub_filter(logger_name: str, scrubber: Scrubber) -> None:
    """Attach (or replace) our ScrubFilter on a logger; idempotent, so every Notifier can call it."""
    logger = logging.getLogger(logger_name)
    for existing in list(logger.filters):
        if isinstance(existing, ScrubFilter):
            logger.removeFilter(existing)
    logger.addFilter(ScrubFilter(scrubber))
