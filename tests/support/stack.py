"""The served stack: the real app on a loopback port (uvicorn), a seeded database, and — for the job pipeline —
the kie simulator. One environment class, `Stack`, for every test that talks to the app over HTTP.

    async with stack(database, fast_sim(callback_delay_s=0.1), reconcile_after_s=1) as env:
        job_id = await env.submit(email="guest@example.com")
        view = await env.wait_for(job_id, "completed")

`open_stack` starts a `Simulator` (fast callbacks unless told otherwise), builds settings with
`kie_base_url=sim.url` (so the app does not start its own), serves `create_app` on a free port that is also
`public_base_url`, and seeds the database (`tests/support/seed.py`: an event with credits, an app user, kiosk,
app and admin tokens, the default styles, whose preview images go into the app's storage once it runs).
`open_app` is the app alone (no simulator, no dispatcher, plain settings) for the API and page tests. Use them
with the `database` fixture (SQLite and PostgreSQL, audited after the test) or `pg_database` /
`sqlite_database`; the fixtures in `tests/conftest.py` hand out the factories.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from photobot.app import create_app
from photobot.db import Database
from photobot.db.audit import audit
from photobot.db.models import Event, Job, JobState, Notification, WebhookEvent, utcnow
from photobot.net.tls import client_context
from photobot.providers.signatures import kie_signature
from photobot.providers.simulator.config import SimConfig
from photobot.providers.simulator.kie_api import callback_payload
from photobot.providers.simulator.runner import Simulator
from photobot.runtime import Runtime
from photobot.services import accounts, styles
from photobot.settings import Settings, load_settings
from tests.support.images import jpeg, striped_png
from tests.support.metrics import Samples, parse_metrics
from tests.support.records import ledger_reasons, load_job
from tests.support.seed import seed
from tests.support.servers import free_port, serve

FAST = {"callback_rate_limit": "100000/minute", "submit_rate_limit": "100000/minute", "poll_interval_s": 0.2}


def fast_sim(**knobs: Any) -> SimConfig:
    """Simulator knobs for tests: fast callbacks, small results, no provider-side rate limit."""
    values: dict[str, Any] = {"callback_delay_s": 0.1, "long_side": 64, "rate_limit": 10_000}
    values.update(knobs)
    return SimConfig(**values)


@dataclass
class Stack:
    base_url: str
    client: httpx.AsyncClient
    db: Database
    settings: Settings
    app: Starlette
    event_id: int
    user_id: int
    kiosk_token: str
    app_token: str
    admin_token: str
    simulator: Simulator | None = None
    view_as: str = "kiosk"  # whose token reads GET /v1/jobs/{id} in `view` and `wait_for` ("kiosk" or "admin")

    @property
    def sim(self) -> Simulator:
        assert self.simulator is not None, "this stack runs without the simulator"
        return self.simulator

    @property
    def runtime(self) -> Runtime:
        """The served app's own runtime (same storage, bus and database), for looking in and for test wiring."""
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def auth(self) -> dict[str, str]:
        return self.auth_as(None)

    @property
    def admin(self) -> dict[str, str]:
        return self.auth_as(self.admin_token)

    def auth_as(self, token: str | None) -> dict[str, str]:
        """Bearer headers for `token` (the kiosk token when None)."""
        return {"Authorization": f"Bearer {token or self.kiosk_token}"}

    # --- intake and status ------------------------------------------------------------------------
    async def submit(self, *, style: str = "pb_a", email: str | None = None, **fields: Any) -> str:
        data = {"style": style, **fields}
        if email:
            data["email"] = email
        response = await self.client.post(
            "/v1/jobs", data=data, files={"image": ("guest.jpg", jpeg(), "image/jpeg")}, headers=self.auth
        )
        assert response.status_code == 202, response.text
        return response.json()["id"]

    async def view(self, job_id: str) -> dict[str, Any]:
        headers = self.admin if self.view_as == "admin" else self.auth
        response = await self.client.get(f"/v1/jobs/{job_id}", headers=headers)
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

    async def scrape(self) -> Samples:
        response = await self.client.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return parse_metrics(response.text)

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
        """Insert a job in any state directly (cost 0, so the credit audit has nothing to check); for completed
        jobs, store a real result image."""
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
            await self.runtime.storage.put_bytes(job.input_key, striped_png((64, 64), "gray"), "image/jpeg")
        if state.final:
            job.completed_at = completed_at or now
            job.updated_at = job.completed_at
        if state == JobState.completed:
            job.result_key = f"results/{job.id}.png"
            job.result_content_type = "image/png"
            if store:
                await self.runtime.storage.put_bytes(job.result_key, striped_png(color=color), "image/png")
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


StackFactory = Callable[..., AbstractAsyncContextManager[Stack]]


@asynccontextmanager
async def open_stack(
    db: Database,
    make_settings: Callable[..., Settings],
    sim_config: SimConfig | None = None,
    *,
    simulator: bool = True,
    fast: bool = True,
    run_dispatcher: bool = True,
    credits: int = 20,
    serve_options: dict[str, Any] | None = None,
    sim_setup: Callable[[Simulator], None] | None = None,
    reuse: Stack | None = None,
    view_as: str = "kiosk",
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """Serve the app over `db`; `simulator`: with the kie simulator (`sim_config`, fast by default) as provider;
    `fast`: no rate limits and a short poll interval; `reuse`: serve a second app over the database (and tokens)
    of an earlier stack instead of seeding again; `sim_setup`: e.g. wrap `sim.app` in a middleware before it
    starts; `overrides`: settings."""
    if reuse is None:
        seeded = await seed(db, credits=credits)
    else:
        seeded = {
            "event_id": reuse.event_id,
            "user_id": reuse.user_id,
            "kiosk": reuse.kiosk_token,
            "app": reuse.app_token,
            "admin": reuse.admin_token,
        }
    sim: Simulator | None = None
    if simulator:
        sim = Simulator(sim_config or fast_sim())
        if sim_setup is not None:
            sim_setup(sim)
    async with sim if sim is not None else _nothing():
        port = free_port()
        values: dict[str, Any] = {
            **(FAST if fast else {}),
            "database_url": db.url,
            "public_base_url": f"http://127.0.0.1:{port}",
        }
        if sim is not None:
            values.update(kie_base_url=sim.url, kie_upload_base_url=sim.url)
        values.update(overrides)
        settings = make_settings(**values)
        app = create_app(settings, run_dispatcher=run_dispatcher)
        async with (
            serve(app, port=port, **(serve_options or {})) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=30, verify=client_context()) as client,
        ):
            if reuse is None:  # the shipped styles' preview images, in this app's storage (as bootstrap does)
                async with db.session() as session:
                    await styles.load_default_catalogue(session, app.state.runtime.storage)
            yield Stack(
                base_url, client, db, settings, app, seeded["event_id"], seeded["user_id"],
                seeded["kiosk"], seeded["app"], seeded["admin"], sim, view_as,
            )  # fmt: skip


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield None


def open_app(
    db: Database, make_settings: Callable[..., Settings], *, run_dispatcher: bool = False, credits: int = 10,
    reuse: Stack | None = None, **overrides: Any,
) -> AbstractAsyncContextManager[Stack]:  # fmt: skip
    """The app alone (no simulator, no dispatcher unless asked, default rate limits): API and page tests."""
    return open_stack(
        db, make_settings, simulator=False, fast=False, run_dispatcher=run_dispatcher, credits=credits, reuse=reuse,
        **overrides,
    )  # fmt: skip


@asynccontextmanager
async def module_stack(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory, **overrides: Any
) -> AsyncIterator[Stack]:
    """`open_app` over a SQLite database of its own, for a module-scoped fixture (audited at the end)."""
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

        async with open_app(db, make, **overrides) as env:
            yield env
        assert not await audit(db)
    finally:
        await db.close()
