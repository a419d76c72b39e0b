"""Provider test harness: the simulator and a helper server, both on real loopback sockets.

- `simulator`: the kie.ai/fal.ai simulator (one per session, knobs and counters reset before each test);
- `aux`: a small server standing in for our side: input photos (`/input.png`), callback receivers
  (`/callbacks/{name}`, collected in `aux.callbacks[name]`) and a swappable JWKS (`/jwks.json`);
- `settings`: test settings pointing every provider URL at the simulator;
- `http`: a shared httpx client.
"""

from __future__ import annotations

import asyncio
import io
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.providers.simulator import SimConfig, Simulator, start_server
from photobot.settings import Settings

SIM_DEFAULTS = {"callback_delay_s": 0.05, "long_side": 128}


def make_png(size: tuple[int, int] = (160, 120), colour: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Aux:
    url: str = ""
    callbacks: dict[str, list[Received]] = field(default_factory=lambda: defaultdict(list))
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    jwks_fetches: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def callback_url(self, name: str) -> str:
        return f"{self.url}/callbacks/{name.replace('/', '_')}?token=t0k3n"

    async def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        name = name.replace("/", "_")
        async with asyncio.timeout(timeout):
            while len(self.callbacks[name]) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.callbacks[name]

    def reset(self) -> None:
        self.callbacks.clear()
        self.jwks = {"keys": []}
        self.jwks_fetches = 0


def _aux_app(aux: Aux) -> Starlette:
    png = make_png()

    async def input_png(request: Request) -> Response:
        return Response(png, media_type="image/png")

    async def callback(request: Request) -> Response:
        aux.callbacks[request.path_params["name"]].append(Received(await request.body(), dict(request.headers)))
        aux.arrived.set()
        return JSONResponse({"code": 200, "msg": "success"})

    async def jwks(request: Request) -> Response:
        aux.jwks_fetches += 1
        return JSONResponse(aux.jwks)

    return Starlette(
        routes=[
            Route("/input.png", input_png),
            Route("/callbacks/{name}", callback, methods=["POST"]),
            Route("/jwks.json", jwks),
        ]
    )


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
    server = await start_server(_aux_app(aux))
    aux.url = server.url
    yield aux
    await server.stop()


@pytest.fixture
def aux(_aux_session: Aux) -> Aux:
    _aux_session.reset()
    return _aux_session


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def settings(make_settings: Callable[..., Settings], simulator: Simulator) -> Settings:
    return provider_settings(make_settings, simulator)


def provider_settings(make_settings: Callable[..., Settings], simulator: Simulator, **overrides: Any) -> Settings:
    url = simulator.url
    values: dict[str, Any] = {
        "provider": "simulator",
        "kie_base_url": url,
        "kie_upload_base_url": url,
        "fal_queue_url": f"{url}/fal/queue",
        "fal_rest_url": f"{url}/fal",
        "fal_jwks_url": f"{url}/fal/.well-known/jwks.json",
        "provider_timeout_s": 5.0,
        "provider_connect_timeout_s": 2.0,
    }
    values.update(overrides)
    return make_settings(**values)
