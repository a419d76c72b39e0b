"""Fixtures for operations tests: the real app on a loopback port with the kie simulator, metrics scraping.

async with ops_app(database, fast_sim(failure_rate=1.0)) as env:
    job_id = await env.submit(email="guest@example.com")
    await env.wait_for(job_id, "failed")
    before = await env.scrape()
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from photobot.app import create_app
from photobot.db import Database
from photobot.db.models import Job
from photobot.providers.simulator.config import SimConfig
from photobot.providers.simulator.runner import Simulator
from photobot.settings import Settings
from tests.api.conftest import seed
from tests.support.records import ledger_reasons, load_job
from tests.support.servers import free_port, serve

FAST = {"callback_rate_limit": "100000/minute", "submit_rate_limit": "100000/minute", "poll_interval_s": 0.2}


def small_jpeg(size: tuple[int, int] = (64, 64), color: str = "tomato") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def fast_sim(**knobs: Any) -> SimConfig:
    values: dict[str, Any] = {"callback_delay_s": 0.1, "long_side": 64, "rate_limit": 10_000}
    values.update(knobs)
    return SimConfig(**values)


class Samples(dict[tuple[str, tuple[tuple[str, str], ...]], float]):
    """Parsed exposition: (sample name, sorted labels) → value, with a forgiving lookup."""

    def get_value(self, name: str, **labels: str) -> float:
        """Sum of the samples called `name` whose labels include `labels` (0 when none)."""
        total = 0.0
        for (sample, sample_labels), value in self.items():
            if sample != name:
                continue
            have = dict(sample_labels)
            if all(have.get(k) == v for k, v in labels.items()):
                total += value
        return total


def parse_metrics(text: str) -> Samples:
    samples = Samples()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@dataclass
class OpsEnv:
    base_url: str
    client: httpx.AsyncClient
    db: Database
    settings: Settings
    sim: Simulator
    app: Starlette
    event_id: int
    user_id: int
    kiosk_token: str
    app_token: str
    admin_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.kiosk_token}"}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def submit(self, *, style: str = "pb_a", email: str | None = None, **fields: Any) -> str:
        data = {"style": style, **fields}
        if email:
            data["email"] = email
        response = await self.client.post(
            "/v1/jobs", data=data, files={"image": ("guest.jpg", small_jpeg(), "image/jpeg")}, headers=self.auth
        )
        assert response.status_code == 202, response.text
        return response.json()["id"]

    async def wait_for(self, job_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            response = await self.client.get(f"/v1/jobs/{job_id}", headers=self.admin)
            assert response.status_code == 200, response.text
            view = response.json()
            if view["status"] == status:
                return view
            if view["status"] in ("completed", "failed"):
                raise AssertionError(f"job {job_id} ended {view['status']} ({view.get('error')}), wanted {status}")
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {view['status']} after {timeout}s, wanted {status}")
            await asyncio.sleep(0.05)

    async def job(self, job_id: str) -> Job:
        return await load_job(self.db, job_id)

    async def ledger(self, job_id: str) -> list[str]:
        return await ledger_reasons(self.db, job_id)

    async def set_job(self, job_id: str, **values: Any) -> None:
        async with self.db.session() as session:
            await session.execute(sa.update(Job).where(Job.id == job_id).values(**values))

    async def scrape(self) -> Samples:
        response = await self.client.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return parse_metrics(response.text)

    def token(self, job_id: str, deadline_ts: float | None = None) -> str:
        return self.app.state.providers.tokens.issue(
            job_id, "kie", deadline_ts if deadline_ts is not None else time.time() + 600
        )


OpsFactory = Callable[..., AbstractAsyncContextManager[OpsEnv]]


@pytest.fixture
def ops_app(make_settings: Callable[..., Settings]) -> OpsFactory:
    @asynccontextmanager
    async def start(
        db: Database,
        sim_config: SimConfig | None = None,
        *,
        run_dispatcher: bool = True,
        credits: int = 20,
        serve_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> AsyncIterator[OpsEnv]:
        seeded = await seed(db, credits=credits)
        async with Simulator(sim_config or fast_sim()) as sim:
            port = free_port()
            values: dict[str, Any] = {
                **FAST,
                "database_url": db.url,
                "public_base_url": f"http://127.0.0.1:{port}",
                "kie_base_url": sim.url,
                "kie_upload_base_url": sim.url,
            }
            values.update(overrides)
            settings = make_settings(**values)
            app = create_app(settings, run_dispatcher=run_dispatcher)
            async with (
                serve(app, port=port, **(serve_options or {})) as base_url,
                httpx.AsyncClient(base_url=base_url, timeout=30) as client,
            ):
                yield OpsEnv(
                    base_url, client, db, settings, sim, app, seeded["event_id"], seeded["user_id"],
                    seeded["kiosk"], seeded["app"], seeded["admin"],
                )  # fmt: skip

    return start
