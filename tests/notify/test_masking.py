"""Email addresses and phone numbers never appear whole in logs or stored errors."""

from __future__ import annotations

import logging

import pytest

from photobot.notify import mask_email, mask_phone
from photobot.notify.masking import Scrubber, install_scrub_filter


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("guest@example.com", "g***@e***.com"),
        ("a.b+tag@mail.example.co.id", "a***@m***.id"),
        ("x@localhost", "x***@l***"),
        ("not-an-address", "***"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_email(address, masked):
    assert mask_email(address) == masked


@pytest.mark.parametrize(
    ("number", "masked"),
    [("+628123456789", "+62******789"), ("+62 812-3456-789", "+62******789"), ("0812345678", "08******678"),
     ("123", "***"), (None, "")],
)  # fmt: skip
def test_mask_phone(number, masked):
    assert mask_phone(number) == masked


def test_scrubber_masks_addresses_numbers_and_secrets_but_not_dates():
    scrub = Scrubber(["s3cr3t-pass"])
    text = (
        "Sent Email to guest@example.com via mailto://u:s3cr3t-pass@smtp; WhatsApp to +628123456789 "
        "and %2B628123456789 at 2026-11-22 00:23:40 on port 44313"
    )
    assert scrub(text) == (
        "Sent Email to g***@e***.com via mailto://u:***@smtp; WhatsApp to +62******789 "
        "and +62******789 at 2026-11-22 00:23:40 on port 44313"
    )


def test_scrub_filter_rewrites_records_of_a_logger(caplog):
    caplog.set_level(logging.INFO)
    install_scrub_filter("apprise.test-scrub", Scrubber())
    install_scrub_filter("apprise.test-scrub", Scrubber())  # idempotent
    logger = logging.getLogger("apprise.test-scrub")
    assert len(logger.filters) == 1
    logger.info("Sent to %s and %s", "guest@example.com", "+628123456789")
    assert caplog.records[-1].getMessage() == "Sent to g***@e***.com and +62******789"
