"""Fixtures for API tests: a served app with a seeded event, tokens and the default styles."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image

from photobot.app import create_app
from photobot.db import Database
from photobot.services import access, accounts, styles
from photobot.settings import Settings
from tests.support.servers import free_port, serve


def jpeg_bytes(size: tuple[int, int] = (640, 480), color: str = "tomato", **save: Any) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


@dataclass
class ApiEnv:
    base_url: str
    client: httpx.AsyncClient
    db: Database
    settings: Settings
    event_id: int
    kiosk_token: str
    app_token: str
    admin_token: str
    user_id: int

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.kiosk_token}"}


async def seed(db: Database, *, credits: int = 10, user_credits: int = 5) -> dict[str, Any]:
    async with db.session() as session:
        await styles.load_default_catalogue(session)
        event = await accounts.create_event(session, "Wedding", credits)
        user = await accounts.create_user(session, "app-user-1", user_credits)
        _, kiosk = await access.create_token(session, "event", event_id=event.id)
        _, app = await access.create_token(session, "app")
        _, admin = await access.create_token(session, "admin")
    return {"event_id": event.id, "user_id": user.id, "kiosk": kiosk, "app": app, "admin": admin}


@pytest.fixture
def api_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    return make_settings


@pytest.fixture
async def api(database: Database, make_settings: Callable[..., Settings]) -> AsyncIterator[ApiEnv]:
    async for env in _api(database, make_settings):
        yield env


async def _api(
    db: Database, make_settings: Callable[..., Settings], *, credits: int = 10, **overrides: Any
) -> AsyncIterator[ApiEnv]:
    seeded = await seed(db, credits=credits)
    port = free_port()
    settings = make_settings(database_url=db.url, public_base_url=f"http://127.0.0.1:{port}", **overrides)
    app = create_app(settings, run_dispatcher=False)
    async with serve(app, port=port) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield ApiEnv(
            base_url,
            client,
            db,
            settings,
            seeded["event_id"],
            seeded["kiosk"],
            seeded["app"],
            seeded["admin"],
            seeded["user_id"],
        )
