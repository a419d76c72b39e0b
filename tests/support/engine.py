"""Fixtures for the callback engine: the real app on a loopback port, the kie simulator, a seeded database.

`engine(...)` is an async context manager factory:

    async with engine(SimConfig(callback_delay_s=0.1), reconcile_after_s=1) as env:
        job_id = await env.submit(email="guest@example.com")
        view = await env.wait_for(job_id, "completed")

It starts a `Simulator` (fast callbacks unless told otherwise), builds settings with `kie_base_url=sim.url`
(so the app does not start its own), serves `create_app` on a free port that is also `public_base_url`,
and seeds the database (an event with credits, a kiosk token, the default styles). Use it with the
`database` fixture (SQLite and PostgreSQL, audited after the test) or `pg_database` / `sqlite_database`.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image
from starlette.applications import Starlette

from photobot.app import create_app
from photobot.db import Database
from photobot.db.models import Job, Notification, WebhookEvent
from photobot.providers.signatures import kie_signature
from photobot.providers.simulator.config import SimConfig
from photobot.providers.simulator.kie_api import callback_payload
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
    """Simulator knobs for tests: fast callbacks, small results, no provider-side rate limit."""
    values: dict[str, Any] = {"callback_delay_s": 0.1, "long_side": 64, "rate_limit": 10_000}
    values.update(knobs)
    return SimConfig(**values)


@dataclass
class EngineEnv:
    base_url: str
    client: httpx.AsyncClient
    db: Database
    settings: Settings
    sim: Simulator
    app: Starlette
    event_id: int
    kiosk_token: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.kiosk_token}"}

    # --- intake and status ------------------------------------------------------------------------
    async def submit(self, *, style: str = "pb_a", email: str | None = None, **fields: Any) -> str:
        data = {"style": style, **fields}
        if email:
            data["email"] = email
        response = await self.client.post(
            "/v1/jobs", data=data, files={"image": ("guest.jpg", small_jpeg(), "image/jpeg")}, headers=self.auth
        )
        assert response.status_code == 202, response.text
        return response.json()["id"]

    async def view(self, job_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/jobs/{job_id}", headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()

    async def wait_for(self, job_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll GET /v1/jobs/{id} until `status` (or any final status, which must then be `status`)."""
        deadline = time.monotonic() + timeout
        while True:
            view = await self.view(job_id)
            if view["status"] == status:
                return view
            if view["status"] in ("completed", "failed"):
                raise AssertionError(f"job {job_id} ended {view['status']} ({view.get('error')}), wanted {status}")
            if time.monotonic() > deadline:
                job = await self.job(job_id)
                raise AssertionError(
                    f"job {job_id} still {view['status']} (state={job.state}, error={job.error_code}) "
                    f"after {timeout}s, wanted {status}"
                )
            await asyncio.sleep(0.05)

    async def wait_state(self, job_id: str, states: tuple[str, ...], timeout: float = 15.0) -> Job:
        deadline = time.monotonic() + timeout
        while True:
            job = await self.job(job_id)
            if job.state in states:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} in {job.state}, wanted one of {states}")
            await asyncio.sleep(0.02)

    # --- database -----------------------------------------------------------------------------------
    async def job(self, job_id: str) -> Job:
        return await load_job(self.db, job_id)

    async def ledger(self, job_id: str) -> list[str]:
        return await ledger_reasons(self.db, job_id)

    async def notifications(self, job_id: str) -> list[Notification]:
        async with self.db.session() as session:
            rows = await session.execute(sa.select(Notification).where(Notification.job_id == job_id))
            return list(rows.scalars())

    async def webhook_events(self, job_id: str | None = None) -> list[tuple[str, str, str | None]]:
        async with self.db.session() as session:
            query = sa.select(WebhookEvent.task_id, WebhookEvent.outcome, WebhookEvent.job_id).order_by(WebhookEvent.id)
            if job_id is not None:
                query = query.where(WebhookEvent.job_id == job_id)
            return [tuple(r) for r in (await session.execute(query)).all()]  # type: ignore[misc]

    async def set_job(self, job_id: str, **values: Any) -> None:
        async with self.db.session() as session:
            await session.execute(sa.update(Job).where(Job.id == job_id).values(**values))

    async def snapshot(self, job_id: str) -> tuple[Any, ...]:
        """Everything a refused callback must leave alone."""
        job = await self.job(job_id)
        row = {k: v for k, v in job.model_dump().items() if k not in ("lease_owner", "lease_until")}
        return row, await self.ledger(job_id), await self.webhook_events(), await self.notifications_count()

    async def notifications_count(self) -> int:
        async with self.db.session() as session:
            return int((await session.execute(sa.select(sa.func.count()).select_from(Notification))).scalar_one())

    # --- callbacks ------------------------------------------------------------------------------------
    def token(self, job_id: str, deadline_ts: float | None = None) -> str:
        providers = self.app.state.providers
        return providers.tokens.issue(job_id, "kie", deadline_ts if deadline_ts is not None else time.time() + 600)

    def callback_url_of(self, task_id: str) -> str:
        """The callBackUrl our createTask sent for this task (as the simulator stored it)."""
        param = json.loads(self.sim.state.tasks[task_id]["param"])
        return param["callBackUrl"]

    def callback_body(self, task_id: str, *, state: str = "success", result_url: str | None = None) -> bytes:
        """A kie callback body for `task_id`: the simulator's own payload when it knows the task."""
        task = self.sim.state.tasks.get(task_id)
        if task is not None and task.get("state") in ("success", "fail") and result_url is None:
            return json.dumps(callback_payload(self.sim.state, task)).encode()
        now_ms = int(time.time() * 1000)
        ok = state == "success"
        data = {
            "taskId": task_id, "model": "nano-banana-pro", "state": state, "param": "{}",
            "resultJson": json.dumps({"resultUrls": [result_url or f"{self.sim.url}/files/none.png"]}) if ok else None,
            "failCode": "" if ok else "500", "failMsg": None if ok else "Internal server error",
            "costTime": 1, "createTime": now_ms, "updateTime": now_ms, "completeTime": now_ms,
        }  # fmt: skip
        return json.dumps({"code": 200 if ok else 501, "msg": "done", "data": data}).encode()

    async def post_callback(
        self,
        body: bytes,
        *,
        token: str | None,
        headers: dict[str, str] | None = None,
        hmac_key: str | None = None,
        task_id: str | None = None,
    ) -> httpx.Response:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if hmac_key is not None:
            ts = int(time.time())
            sent["X-Webhook-Timestamp"] = str(ts)
            sent["X-Webhook-Signature"] = kie_signature(hmac_key, task_id or "", ts)
        params = {"token": token} if token is not None else {}
        return await self.client.post("/webhooks/kie", params=params, content=body, headers=sent)


EngineFactory = Callable[..., AbstractAsyncContextManager[EngineEnv]]


@pytest.fixture
def engine(make_settings: Callable[..., Settings]) -> EngineFactory:
    @asynccontextmanager
    async def start(
        db: Database,
        sim_config: SimConfig | None = None,
        *,
        run_dispatcher: bool = True,
        credits: int = 20,
        serve_options: dict[str, Any] | None = None,
        sim_setup: Callable[[Simulator], None] | None = None,
        **overrides: Any,
    ) -> AsyncIterator[EngineEnv]:
        seeded = await seed(db, credits=credits)
        sim = Simulator(sim_config or fast_sim())
        if sim_setup is not None:
            sim_setup(sim)  # e.g. wrap sim.app in a middleware before it starts
        async with sim:
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
                yield EngineEnv(base_url, client, db, settings, sim, app, seeded["event_id"], seeded["kiosk"])

    return start
