"""Liveness and readiness over real HTTP (uvicorn on loopback), with live and dead stores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from photobot.app import create_app
from photobot.db.migrate import upgrade
from photobot.settings import Settings
from tests.support.databases import create_pg_database, drop_pg_database, pg_url_for
from tests.support.servers import free_port, serve

PROBLEM = "application/problem+json"


def _dead_port() -> int:
    return free_port()  # bound and released: nothing listens there


async def test_healthz_and_readyz_when_everything_is_up(
    make_settings: Callable[..., Settings], db_url: str, redis_url: str
) -> None:
    app = create_app(make_settings(database_url=db_url, redis_url=redis_url), run_dispatcher=False)
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        live = await client.get("/healthz")
        assert live.status_code == 200
        assert live.json() == {"status": "ok"}

        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "ready"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["storage"] == "ok"
        assert body["checks"]["redis"] == "ok"
        assert all(state == "ok" for state in body["checks"].values())


async def test_readyz_names_a_database_that_went_away(make_settings: Callable[..., Settings]) -> None:
    """PostgreSQL disappears under a running app (its database is dropped): /readyz says so, /healthz stays up.

    (The app cannot start at all with an unreachable database: the provider wiring syncs API keys into the
    database in the lifespan, so a dead database is a start-up failure, not a readiness answer.)
    """
    name = await create_pg_database("photobot_ready")
    try:
        url = pg_url_for(name)
        await asyncio.to_thread(upgrade, url)
        app = create_app(make_settings(database_url=url), run_dispatcher=False)
        async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/readyz")).status_code == 200
            await drop_pg_database(name)
            assert (await client.get("/healthz")).status_code == 200  # alive, just not ready
            response = await client.get("/readyz")
    finally:
        await drop_pg_database(name)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == 503
    assert problem["code"] == "not_ready"
    assert problem["type"].endswith("/not_ready")
    assert "database" in problem["detail"]
    assert problem["checks"]["database"] != "ok"
    assert problem["checks"]["storage"] == "ok"
    assert name not in response.text  # names the part, not its address


async def test_readyz_names_an_unreachable_redis(make_settings: Callable[..., Settings], sqlite_url: str) -> None:
    # Intake keeps working without Redis, so the instance stays in the pool: 200 "degraded", Redis named.
    settings = make_settings(database_url=sqlite_url, redis_url=f"redis://127.0.0.1:{_dead_port()}/0")
    async with serve(create_app(settings, run_dispatcher=False)) as base, httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] != "ok"
    assert body["checks"]["database"] == "ok"


async def test_unknown_route_is_a_problem_with_a_code(make_settings: Callable[..., Settings], sqlite_url: str) -> None:
    app = create_app(make_settings(database_url=sqlite_url), run_dispatcher=False)
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        missing = await client.get("/no/such/route")
        wrong_method = await client.post("/healthz")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)
    body = missing.json()
    assert body["code"] == "not_found"
    assert body["status"] == 404
    assert {"type", "title", "detail"} <= set(body)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"
