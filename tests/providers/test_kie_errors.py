"""Each kie.ai error code over real HTTP: its classification, and what the submitter does with it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from photobot.db import Database
from photobot.providers.base import GenerationRequest
from photobot.providers.errors import ProviderError
from photobot.providers.keypool import KeyPool
from photobot.providers.kie import KieProvider
from photobot.providers.ratelimit import MemoryRateLimiter
from photobot.providers.retry import RetryPolicy
from photobot.providers.simulator import SimConfig, Simulator
from photobot.providers.submit import Submitter
from photobot.settings import Settings
from tests.support.providers import Aux, provider_settings

KEY = "sim-key-errors-0001"
FAST = RetryPolicy(base_s=0.005, cap_s=0.02, max_attempts=4)


def req(aux: Aux) -> GenerationRequest:
    return GenerationRequest("nano-banana-pro", "p", (f"{aux.url}/input.png",), callback_url=aux.callback_url("e"))


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
    ],
)
@pytest.mark.parametrize("http_status", ["mirror", "200"])
async def test_code_classification_over_http(
    code: int, stable: str, transient: bool, effect: str | None, http_status: str,
    simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient,
) -> None:  # fmt: skip
    simulator.config.update({"next_codes": [code], "http_status": http_status})
    with pytest.raises(ProviderError) as info:
        await KieProvider(http, settings).submit(req(aux), KEY)
    err = info.value
    assert (err.code, err.transient, err.key_effect, err.provider_code) == (stable, transient, effect, code)
    assert KEY not in str(err) and KEY not in repr(err)


async def test_real_validation_error_from_the_simulator(
    simulator: Simulator, settings: Settings, http: httpx.AsyncClient
) -> None:
    """The simulator's own rules agree with our table; a body it rejects is a fatal 422."""
    kie = KieProvider(http, settings)
    body = kie.build_body(GenerationRequest("nano-banana-pro", "p", ("http://x/y.png",)))
    body["input"]["image_urls"] = body["input"].pop("image_input")  # the field-name trap
    response = await http.post(f"{simulator.url}/api/v1/jobs/createTask", json=body,
                               headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip
    assert response.json()["code"] == 422


async def test_network_error_and_timeout(
    simulator: Simulator, aux: Aux, make_settings: Callable[..., Settings], http: httpx.AsyncClient
) -> None:
    closed = provider_settings(make_settings, simulator, kie_base_url="http://127.0.0.1:9")
    with pytest.raises(ProviderError) as info:
        await KieProvider(http, closed).submit(req(aux), KEY)
    assert info.value.code == "provider_network" and info.value.transient
    simulator.config.create_delay_s = 1.0
    slow = provider_settings(make_settings, simulator, provider_timeout_s=0.2)
    with pytest.raises(ProviderError) as info:
        await KieProvider(http, slow).submit(req(aux), KEY)
    assert info.value.code == "provider_timeout" and info.value.transient


@pytest.fixture
async def submitter(sqlite_database: Database, settings: Settings, http: httpx.AsyncClient) -> Submitter:
    pool = KeyPool(sqlite_database, "kie")
    await pool.sync_env_keys([KEY])
    return Submitter(KieProvider(http, settings), pool, MemoryRateLimiter(20, 1.0), FAST)


@pytest.mark.parametrize(
    ("script", "calls", "outcome"),
    [
        ([500, 500], 3, "ok"),
        ([455, 408], 3, "ok"),
        ([500] * 6, 4, "provider_server_error"),  # the cap: max_attempts calls, whatever is still scripted
        ([422], 1, "provider_validation"),
        ([505], 1, "provider_feature_disabled"),
        ([501], 2, "ok"),  # 501: one retry
        ([501, 501], 2, "provider_generation_failed"),
    ],
)
async def test_submitter_retry_behaviour(
    script: list[int],
    calls: int,
    outcome: str,
    aux: Aux,
    sqlite_database: Database,
    make_settings: Callable[..., Settings],
    http: httpx.AsyncClient,
) -> None:
    # A simulator of this test's own: the session's one is shared with every provider test of this process, and a
    # createTask from any of them would take one of the scripted codes (seen once in CI: 2 calls instead of 3).
    async with Simulator(SimConfig(callback_delay_s=0.05, long_side=128)) as simulator:
        settings = provider_settings(make_settings, simulator)
        pool = KeyPool(sqlite_database, "kie")
        await pool.sync_env_keys([KEY])
        submitter = Submitter(KieProvider(http, settings), pool, MemoryRateLimiter(20, 1.0), FAST)
        await _scripted_submit(simulator, submitter, aux, script, calls, outcome)


async def _scripted_submit(
    simulator: Simulator, submitter: Submitter, aux: Aux, script: list[int], calls: int, outcome: str
) -> None:
    simulator.config.next_codes = list(script)
    if outcome == "ok":
        submission = await submitter.submit(req(aux))
        assert submission.attempts == calls and submission.result.task_id
    else:
        with pytest.raises(ProviderError) as info:
            await submitter.submit(req(aux))
        assert info.value.code == outcome
    assert simulator.stats.create_calls[KEY] == calls


async def test_submitter_polls_with_the_submitting_key(simulator: Simulator, aux: Aux, submitter: Submitter) -> None:
    submission = await submitter.submit(req(aux))
    await aux.wait_for("e")
    status = await submitter.fetch_status(submission.result.task_id, submission.result.meta, submission.key_id)
    assert status.state == "success"
