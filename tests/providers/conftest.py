"""Provider test harness: the simulator and a helper server, both on real loopback sockets.

- `simulator`: the kie.ai/fal.ai simulator (one per session, knobs and counters reset before each test);
- `aux`: a small server standing in for our side: input photos (`/input.png`), callback receivers
  (`/callbacks/{name}`, collected in `aux.callbacks[name]`) and a swappable JWKS (`/jwks.json`);
- `settings`: test settings pointing every provider URL at the simulator;
- `http`: a shared httpx client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from photobot.net.tls import client_context
from photobot.providers.simulator import SimConfig, Simulator, start_server
from photobot.settings import Settings
from tests.support.providers import Aux, aux_app, provider_settings

SIM_DEFAULTS = {"callback_delay_s": 0.05, "long_side": 128}


@pytest.fixture(scope="session")
async def _sim_session() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(**SIM_DEFAULTS)) as sim:  # type: ignore[arg-type]
        yield sim


@pytest.fixture
async def simulator(_sim_session: Simulator) -> Simulator:
    _sim_session.state.reset()
    await asyncio.sleep(0)
    return _sim_session


@pytest.fixture(scope="session")
async def _aux_session() -> AsyncIterator[Aux]:
    aux = Aux()
    server = await start_server(aux_app(aux))
    aux.url = server.url
    yield aux
    await server.stop()


@pytest.fixture
def aux(_aux_session: Aux) -> Aux:
    _aux_session.reset()
    return _aux_session


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=client_context()) as client:
        yield client


@pytest.fixture
def settings(make_settings: Callable[..., Settings], simulator: Simulator) -> Settings:
    return provider_settings(make_settings, simulator)
