"""A real webhook receiver for the outbound webhook tests: an HTTP server that verifies every message it gets with
the `standardwebhooks` library (what an operator's system would use), and collects operator alerts.

    async with open_receiver() as receiver:
        receiver.secrets = [view["secret"]]        # from `webhooks add`
        receiver.script = [500, 500, 500]          # then the default 204
        await receiver.wait_for(4)
        assert all(m.verified for m in receiver.received)

Each `Received` records the headers, the raw body, the parsed body and, for every secret in `receiver.secrets`,
whether it verified the message (`verified_by`). `script` holds the status of each next answer (an int, or
"hang": hold the request until `release()` or the test ends). `/alerts` is an Apprise `json://` target
(`receiver.alert_url`) that records operator alerts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.servers import serve


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified_by: list[bool]
    at: float

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def verified(self) -> bool:
        """Verified by at least one of the receiver's secrets."""
        return any(self.verified_by)

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def signatures(self) -> list[str]:
        return self.headers.get("webhook-signature", "").split(" ")


@dataclass
class Receiver:
    url: str = ""
    secrets: list[str] = field(default_factory=list)
    script: list[int | str] = field(default_factory=list)
    default_status: int = 204
    received: list[Received] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def hook_url(self) -> str:
        return f"{self.url}/hook"

    @property
    def alert_url(self) -> str:
        return self.url.replace("http://", "json://") + "/alerts"

    def release(self) -> None:
        """Let requests held by a "hang" answer finish (with a 503)."""
        self._release.set()

    def verify(self, secret: str, message: Received) -> bool:
        try:
            Webhook(secret).verify(message.body, message.headers)
        except WebhookVerificationError:
            return False
        return True

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        message = Received({k.lower(): v for k, v in request.headers.items()}, body, [], time.monotonic())
        message.verified_by = [self.verify(secret, message) for secret in self.secrets]
        self.received.append(message)
        status = self.script.pop(0) if self.script else self.default_status
        if status == "hang":
            await self._release.wait()
            return Response(status_code=503)
        assert isinstance(status, int)
        return Response(b"nope" if status >= 400 else b"", status_code=status)

    async def _alert(self, request: Request) -> Response:
        self.alerts.append(await request.json())
        return JSONResponse({"ok": True})

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Until `count` messages arrived (more may follow); returns them all."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} webhook messages arrived, wanted {count}")
            await asyncio.sleep(0.02)
        return self.received

    async def wait_alerts(self, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.alerts) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.alerts)} operator alerts arrived, wanted {count}")
            await asyncio.sleep(0.02)
        return self.alerts

    def of_type(self, type_: str) -> list[Received]:
        return [m for m in self.received if m.json.get("type") == type_]


@asynccontextmanager
async def open_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(
        routes=[Route("/hook", receiver._hook, methods=["POST"]), Route("/alerts", receiver._alert, methods=["POST"])]
    )
    async with serve(app) as url:
        receiver.url = url
        try:
            yield receiver
        finally:
            receiver.release()
