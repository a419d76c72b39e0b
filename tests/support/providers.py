"""The provider tests' helper server and settings.

`Aux` stands in for our side of a provider integration: input photos (`/input.png`), callback receivers
(`/callbacks/{name}`, collected in `aux.callbacks[name]`) and a swappable JWKS (`/jwks.json`); `aux_app` serves
it. `provider_settings` points every provider URL at the simulator.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.providers.simulator import Simulator
from photobot.settings import Settings
from tests.support.images import png as image_png


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


def aux_app(aux: Aux) -> Starlette:
    png = image_png((160, 120), (200, 80, 40))

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
