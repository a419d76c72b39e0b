"""Fixtures for the guest pages: a served app (no dispatcher) with a seeded event, and jobs in any state.

`PagesEnv.add_job(state, ...)` inserts a job directly (cost 0, so the credit audit has nothing to check) and,
for completed jobs, stores a real result image; `runtime` is the served app's own runtime (same storage, bus
and database), so tests can publish on its bus and look into its storage.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from photobot.app import create_app
from photobot.db import Database
from photobot.db.audit import audit
from photobot.db.models import Event, Job, JobState, utcnow
from photobot.runtime import Runtime
from photobot.services import accounts
from photobot.settings import Settings, load_settings
from tests.api.conftest import seed
from tests.support.servers import free_port, serve


def png_bytes(size: tuple[int, int] = (600, 800), color: str = "#3c8dbc") -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 40):  # a pattern, so thumbnails are not trivially uniform
        img.paste("#f4d35e", (x, 0, x + 20, size[1]))
    img.save(buf, "PNG")
    return buf.getvalue()


@dataclass
class PagesEnv:
    base_url: str
    client: httpx.AsyncClient
    db: Database
    settings: Settings
    runtime: Runtime
    event_id: int
    kiosk_token: str

    async def add_job(
        self,
        state: JobState | str = JobState.pending,
        *,
        event_id: int | None = None,
        completed_at: datetime | None = None,
        created_at: datetime | None = None,
        purged_at: datetime | None = None,
        error_code: str | None = None,
        store: bool = True,
        color: str = "#3c8dbc",
    ) -> Job:
        state = JobState(state)
        now = utcnow()
        created = created_at or now
        job = Job(
            event_id=event_id or self.event_id,
            style_id="pb_a",
            cost=0,
            provider="kie",
            model="nano-banana-pro",
            prompt="test",
            input_key="",
            state=state,
            deadline_at=created + timedelta(minutes=5),
            created_at=created,
            updated_at=created,
        )
        job.input_key = f"inputs/{job.id}.jpg"
        if store:
            await self.runtime.storage.put_bytes(job.input_key, png_bytes((64, 64), "gray"), "image/jpeg")
        if state.final:
            job.completed_at = completed_at or now
            job.updated_at = job.completed_at
        if state == JobState.completed:
            job.result_key = f"results/{job.id}.png"
            job.result_content_type = "image/png"
            if store:
                await self.runtime.storage.put_bytes(job.result_key, png_bytes(color=color), "image/png")
        if state == JobState.failed:
            job.error_code = error_code or "provider_generation_failed"
            job.error_message = "internal detail that guests must not see"
        job.purged_at = purged_at
        async with self.db.session() as session:
            session.add(job)
        return job

    async def reload(self, job: Job) -> Job:
        async with self.db.session() as session:
            fresh = await session.get(Job, job.id)
        assert fresh is not None
        return fresh

    async def set_event(self, event_id: int | None = None, **fields: Any) -> None:
        async with self.db.session() as session:
            event = await session.get(Event, event_id or self.event_id)
            assert event is not None
            for name, value in fields.items():
                setattr(event, name, value)

    async def new_event(self, name: str = "Another event", **fields: Any) -> int:
        async with self.db.session() as session:
            event = await accounts.create_event(session, name, 0)
            for key, value in fields.items():
                setattr(event, key, value)
            assert event.id is not None
            return event.id


async def open_pages(
    db: Database, make_settings: Callable[..., Settings], *, run_dispatcher: bool = False, **overrides: Any
) -> AsyncIterator[PagesEnv]:
    seeded = await seed(db)
    port = free_port()
    settings = make_settings(database_url=db.url, public_base_url=f"http://127.0.0.1:{port}", **overrides)
    app = create_app(settings, run_dispatcher=run_dispatcher)
    async with serve(app, port=port) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield PagesEnv(base_url, client, db, settings, app.state.runtime, seeded["event_id"], seeded["kiosk"])


@pytest.fixture(scope="module")
async def shared_pages(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PagesEnv]:
    """One served app (SQLite) for a whole module: tests make their own jobs and events, so they do not meet."""
    async for env in module_pages(sqlite_template, tmp_path_factory):
        yield env


async def module_pages(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory, **overrides: Any
) -> AsyncIterator[PagesEnv]:
    tmp = tmp_path_factory.mktemp("pages")
    shutil.copyfile(sqlite_template, tmp / "photobot.db")
    db = Database(f"sqlite+aiosqlite:///{tmp / 'photobot.db'}")
    try:

        def make(**given: Any) -> Settings:
            values: dict[str, Any] = {
                "env": "test",
                "var_dir": tmp / "var",
                "secret_key": "test-secret-key-" + "x" * 32,
                "allow_private_networks": True,
            }
            return load_settings(env_file=None, **{**values, **given})

        async for env in open_pages(db, make, **overrides):
            yield env
        assert not await audit(db)
    finally:
        await db.close()


@pytest.fixture
async def pages(database: Database, make_settings: Callable[..., Settings]) -> AsyncIterator[PagesEnv]:
    async for env in open_pages(database, make_settings):
        yield env


@pytest.fixture
async def sqlite_pages(sqlite_database: Database, make_settings: Callable[..., Settings]) -> AsyncIterator[PagesEnv]:
    async for env in open_pages(sqlite_database, make_settings):
        yield env
