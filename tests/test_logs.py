"""Log redaction (secrets never reach a log line) and the JSON formatter with bound context."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from photobot.logs import (
    REDACTED,
    ConsoleFormatter,
    JSONFormatter,
    RedactingFilter,
    Redactor,
    bind,
    collect_secrets,
)
from photobot.settings import Settings

CALLBACK_TOKEN = "eyJqb2IiOiJhYmMifQ.abc123def.ghi456jkl"


@pytest.mark.parametrize(
    ("text", "leaked", "kept"),
    [
        (f"POST /webhooks/kie?token={CALLBACK_TOKEN} HTTP/1.1", CALLBACK_TOKEN, "/webhooks/kie?token=[redacted]"),
        ("/webhooks/kie?token=abc.def.ghi", "abc.def.ghi", "token=[redacted]"),
        ("/webhooks/fal?a=1&token=abc.def.ghi&b=2", "abc.def.ghi", "&b=2"),
        ("Authorization: Bearer sk-live-0123456789abcdef", "sk-live-0123456789abcdef", "Bearer [redacted]"),
        ("Authorization: Key fal-0123456789abcdef:xyz", "fal-0123456789abcdef", "Key [redacted]"),
        ("client pbt_AbCdEf0123456789_-xyzXYZ used", "AbCdEf0123456789", "pbt_[redacted] used"),
        ("mail to guest.name+tag@example.co.uk now", "guest.name+tag@example.co.uk", "[email]"),
        ("whatsapp to +6281234567890 done", "+6281234567890", "[phone]"),
        (
            "GET /bucket/k.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261122"
            "&X-Amz-Signature=0f1e2d3c4b5a69788796a5b4c3d2e1f0&X-Amz-Expires=60",
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "X-Amz-Expires=60",
        ),
        ("X-Amz-Credential=AKIAEXAMPLE%2F20261122%2Fus-east-1", "AKIAEXAMPLE", "X-Amz-Credential=[redacted]"),
        ("/media/results/a.jpg?exp=1790000000&sig=s1gnatureValue_x", "s1gnatureValue_x", "exp=1790000000"),
        ("smtp mailtos://user:pass@smtp.example.com ok", "user:pass", "mailtos://[redacted]"),
    ],
)
def test_patterns_remove_secrets(text: str, leaked: str, kept: str) -> None:
    cleaned = Redactor()(text)
    assert leaked not in cleaned
    assert kept in cleaned


def test_configured_secrets_are_removed_wherever_they_appear() -> None:
    redactor = Redactor(["kie-key-0123456789", "tiny", ""])
    cleaned = redactor("calling with kie-key-0123456789 (again:kie-key-0123456789)")
    assert "kie-key-0123456789" not in cleaned
    assert cleaned.count(REDACTED) == 2
    assert redactor("tiny words stay") == "tiny words stay"  # too short to be a secret worth matching


def test_collect_secrets_covers_every_configured_secret(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        kie_api_keys="kie-aaaaaaaaaaaa,kie-bbbbbbbbbbbb",
        fal_key="fal-cccccccccccc",
        kie_webhook_hmac_key="hmac-dddddddddddd",
        smtp_url="smtps://user:pw-eeeeeeee@mail.test",
        whatsapp_token="wa-ffffffffffff",
        old_secret_keys="old-gggggggggggg",
    )
    secrets = collect_secrets(settings)
    for value in (
        settings.secret_keys()[0],
        "kie-aaaaaaaaaaaa",
        "kie-bbbbbbbbbbbb",
        "fal-cccccccccccc",
        "hmac-dddddddddddd",
        "smtps://user:pw-eeeeeeee@mail.test",
        "wa-ffffffffffff",
        "old-gggggggggggg",
    ):
        assert value in secrets


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RedactingFilter(Redactor(["configured-secret-123456"])))
    logger = logging.getLogger("photobot.test_logs")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.DEBUG
    try:
        yield logger, stream
    finally:
        logger.handlers = []
        logger.propagate = True


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_bound_context_and_redaction(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    with bind(job_id="job-1", task_id="task-9", event_id=None):
        logger.info("callback %s for %s", "/webhooks/kie?token=abc.def.ghi", "guest@example.com")
        with bind(request_id="req-7"):
            logger.warning("key configured-secret-123456 failed", extra={"url": "/x?sig=deadbeef1"})
    logger.info("outside")

    first, second, outside = _lines(stream)
    assert first["msg"] == "callback /webhooks/kie?token=[redacted] for [email]"
    assert (first["level"], first["logger"]) == ("info", "photobot.test_logs")
    assert first["job_id"] == "job-1"
    assert first["task_id"] == "task-9"
    assert "event_id" not in first  # None values are not bound
    assert first["ts"].endswith("+00:00")
    assert second["request_id"] == "req-7"
    assert second["job_id"] == "job-1"
    assert second["msg"] == "key [redacted] failed"
    assert second["url"] == "/x?sig=[redacted]"  # extra fields are redacted too
    assert "job_id" not in outside
    assert "abc.def.ghi" not in stream.getvalue()
    assert "configured-secret-123456" not in stream.getvalue()


def test_exceptions_are_redacted(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        raise RuntimeError("upstream said: Bearer abcdefghijklmnop0123 is invalid")
    except RuntimeError:
        logger.exception("submit failed")
    (line,) = _lines(stream)
    assert "RuntimeError" in line["exc"]
    assert "abcdefghijklmnop0123" not in stream.getvalue()
    assert "Bearer [redacted]" in line["exc"]


def test_console_formatter_shows_context() -> None:
    record = logging.LogRecord("photobot.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    RedactingFilter(Redactor()).filter(record)
    with bind(job_id="j-2"):
        record2 = logging.LogRecord("photobot.x", logging.INFO, __file__, 1, "hi", None, None)
        RedactingFilter(Redactor()).filter(record2)
    assert "hello you" in ConsoleFormatter().format(record)
    assert "job_id=j-2" in ConsoleFormatter().format(record2)
