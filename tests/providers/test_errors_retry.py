"""Unit tests: error classification, secret redaction, backoff with full jitter, the retry loop."""

from __future__ import annotations

import random

import pytest

from photobot.providers import errors
from photobot.providers.errors import ProviderError, classify_fal, classify_kie, safe_message
from photobot.providers.retry import RetryPolicy, call_with_retries


@pytest.mark.parametrize(
    ("code", "stable", "transient", "effect"),
    [
        (401, "provider_auth", False, "disable"),
        (402, "provider_no_credits", False, "exhausted"),
        (408, "provider_timeout", True, None),
        (422, "provider_validation", False, None),
        (429, "provider_rate_limited", True, "cooldown"),
        (433, "provider_key_limit", False, "exhausted"),
        (455, "provider_maintenance", True, None),
        (500, "provider_server_error", True, None),
        (501, "provider_generation_failed", False, None),
        (505, "provider_feature_disabled", False, None),
        (404, "provider_not_found", False, None),
        (418, "provider_bad_response", False, None),
    ],
)
def test_kie_code_table(code: int, stable: str, transient: bool, effect: str | None) -> None:
    err = classify_kie(code, "m")
    assert (err.code, err.transient, err.key_effect, err.provider_code) == (stable, transient, effect, code)


def test_501_allows_one_retry_only() -> None:
    err = classify_kie(501, "Generation failed")
    assert err.max_retries == 1 and err.retryable and not err.transient


@pytest.mark.parametrize(
    ("status", "stable", "effect"),
    [(401, "provider_auth", "disable"), (403, "provider_no_credits", "exhausted"), (429, "provider_rate_limited",
     "cooldown"), (422, "provider_validation", None), (503, "provider_server_error", None)],
)  # fmt: skip
def test_fal_status_table(status: int, stable: str, effect: str | None) -> None:
    err = classify_fal(status, "")
    assert (err.code, err.key_effect) == (stable, effect)


def test_messages_never_carry_keys() -> None:
    key = "sk-" + "a1b2c3d4" * 5
    err = classify_kie(401, f"invalid key Bearer {key}")
    assert key not in str(err) and key not in repr(err) and key not in err.message
    assert "0123456789abcdef0123456789abcdef" not in safe_message("task 0123456789abcdef0123456789abcdef")


def test_backoff_is_full_jitter_under_a_cap() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=8.0)
    rng = random.Random(1)
    for attempt in range(10):
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        ceiling = min(8.0, 2**attempt)
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2  # spread over the whole range


async def test_retry_loop_transient_then_success() -> None:
    calls, sleeps = [], []
    outcomes = [classify_kie(500, ""), classify_kie(455, ""), "ok"]

    async def fn() -> str:
        calls.append(1)
        item = outcomes.pop(0)
        if isinstance(item, ProviderError):
            raise item
        return item

    async def sleep(d: float) -> None:
        sleeps.append(d)

    assert await call_with_retries(fn, RetryPolicy(base_s=0.01), sleep=sleep) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2


@pytest.mark.parametrize(("code", "calls"), [(422, 1), (401, 1), (505, 1), (501, 2), (500, 4)])
async def test_retry_loop_respects_classification(code: int, calls: int) -> None:
    made = []

    async def fn() -> None:
        made.append(1)
        raise classify_kie(code, "")

    async def sleep(_d: float) -> None:
        return None

    with pytest.raises(ProviderError) as info:
        await call_with_retries(fn, RetryPolicy(max_attempts=4), sleep=sleep)
    assert info.value.provider_code == code and len(made) == calls


def test_network_errors_are_transient() -> None:
    import httpx

    assert errors.network_error(httpx.ConnectTimeout("x")).code == "provider_timeout"
    err = errors.network_error(httpx.ConnectError("secret stuff"))
    assert err.code == "provider_network" and err.transient and "secret" not in str(err)
