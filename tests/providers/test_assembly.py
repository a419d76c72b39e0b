"""Which provider is live follows what the operator did: keys in the pool (CLI, admin API) or the environment count,
the simulator runs only when there is no key at all and then serves kie and fal styles with no further settings,
and the start-up lines say which provider is live, why, and whether callbacks can reach this server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import sqlalchemy as sa
from sqlmodel import col

from photobot.db import Database
from photobot.db.models import ProviderKey, Style
from photobot.providers.assembly import SIMULATOR_KEY, Providers, choose_provider
from photobot.providers.fal import FalProvider
from photobot.providers.models import provider_for_style
from photobot.runtime import Runtime
from photobot.services import access
from photobot.settings import Settings
from tests.support.stack import open_stack

REAL_KIE = "kie-real-key-0123456789"


@asynccontextmanager
async def opened(settings: Settings, *, dispatching: bool = True) -> AsyncIterator[Providers]:
    async with Runtime.open(settings) as runtime, Providers.open(runtime, start_simulator=dispatching) as providers:
        yield providers


async def keys(db: Database) -> list[tuple[str, str, str | None, bool]]:
    async with db.session() as session:
        query = sa.select(ProviderKey.provider, ProviderKey.secret, ProviderKey.label, ProviderKey.active)
        rows = await session.execute(query.order_by(col(ProviderKey.id)))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def lines(caplog: pytest.LogCaptureFixture, fragment: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if fragment in r.getMessage()]


async def test_a_key_added_to_the_pool_switches_the_simulator_off_at_the_next_start(
    database: Database, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url=database.url, allow_private_networks=False)
    caplog.set_level(logging.INFO, logger="photobot")
    async with opened(settings) as providers:
        assert providers.live.name == "simulator" and providers.simulator_url is not None
        assert providers.live.reason == "no kie.ai or fal.ai key in the key pool or the environment"
    assert lines(caplog, "provider: the built-in simulator at http://127.0.0.1:")
    assert await keys(database) == [
        ("kie", SIMULATOR_KEY, "simulator", True),
        ("fal", SIMULATOR_KEY, "simulator", True),
    ]

    async with database.session() as session:
        await access.add_key(session, "kie", REAL_KIE, "bought today")  # `photobot keys add`, POST /v1/admin/keys
    caplog.clear()
    async with opened(settings) as providers:
        assert providers.live.name == "kie" and providers.simulator_url is None
        assert providers.live.reason == "1 kie.ai key in the key pool"
        picked = await providers.get("kie").pool.acquire()
        assert picked.secret == REAL_KIE  # the simulator's own key is never sent to kie.ai
        for _ in range(100):
            if lines(caplog, "cannot call back"):
                break
            await asyncio.sleep(0.05)
    assert lines(caplog, "provider: kie.ai (1 kie.ai key in the key pool)")
    assert not lines(caplog, "simulator at")
    [warning] = lines(caplog, "cannot call back")
    assert warning.startswith(f"kie.ai cannot call back {settings.public_base_url} (not a public address)")
    assert "reconciler" in warning
    simulator_keys = [row for row in await keys(database) if row[1] == SIMULATOR_KEY]
    assert [active for *_, active in simulator_keys] == [False, False]


async def test_keys_in_the_environment_count_before_they_reach_the_pool(
    sqlite_database: Database, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url=sqlite_database.url, kie_api_keys="k1-0123456789,k2-0123456789")
    async with opened(settings, dispatching=False) as providers:  # a web-only process syncs no keys
        assert providers.live.name == "kie" and providers.live.reason == "2 kie.ai keys in the key pool"
        assert await keys(sqlite_database) == []


async def test_only_a_fal_key_makes_fal_the_provider_of_styles_that_name_none(
    sqlite_database: Database, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url=sqlite_database.url)
    async with sqlite_database.session() as session:
        await access.add_key(session, "fal", "fal-key-0123456789")
    async with opened(settings, dispatching=False) as providers:
        live = await choose_provider(settings, providers.get("kie").pool, providers.get("fal").pool)
        assert (live.name, live.reason) == ("fal", "1 fal.ai key in the key pool")
        assert provider_for_style(settings, None, "nano-banana-pro", default=live.slot) == ("fal", settings.fal_model)
        assert provider_for_style(settings, "kie", "nano-banana-pro", default=live.slot)[0] == "kie"


async def test_photobot_provider_simulator_wins_over_keys(
    sqlite_database: Database, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url=sqlite_database.url, provider="simulator")
    async with sqlite_database.session() as session:
        await access.add_key(session, "kie", REAL_KIE)
    async with opened(settings) as providers:
        assert (providers.live.name, providers.live.reason) == ("simulator", "PHOTOBOT_PROVIDER=simulator")
        assert providers.simulator_url is not None


async def test_the_simulator_serves_kie_and_fal_styles_with_no_further_settings(
    database: Database, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """No fal URL, JWKS, simulator port or result host is set: the in-process simulator's fal mode is used."""
    caplog.set_level(logging.INFO, logger="photobot")
    async with open_stack(
        database, make_settings, simulator=False, run_dispatcher=True, simulator_callback_delay_s=0.2,
        provider="simulator",
    ) as env:  # fmt: skip
        async with database.session() as session:
            session.add(Style(id="fal_a", name="fal style", prompt="make it pop", model="fal-ai/nano-banana-pro/edit",
                              provider="fal"))  # fmt: skip
        providers: Providers = env.app.state.providers
        sim = providers.simulator_url
        assert sim is not None
        fal = providers.get("fal").adapter
        assert isinstance(fal, FalProvider) and fal.queue_url == f"{sim}/fal/queue"
        kie_job, fal_job = await env.submit(style="pb_a"), await env.submit(style="fal_a")
        for job_id in (kie_job, fal_job):
            await env.wait_for(job_id, "completed", timeout=30)
        assert [(await env.job(j)).provider for j in (kie_job, fal_job)] == ["kie", "fal"]
        events = await env.webhook_events()
        assert {job_id for *_, job_id in events} == {kie_job, fal_job}  # both finished through their callbacks
        for _ in range(100):
            if lines(caplog, "reach this server"):
                break
            await asyncio.sleep(0.05)
        assert lines(caplog, f"simulator: callbacks to {env.base_url} reach this server")
