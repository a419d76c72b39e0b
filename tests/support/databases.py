"""Throwaway PostgreSQL databases and the test Redis database, for fixtures and tests that need their own."""

from __future__ import annotations

import os
import uuid

import asyncpg

PG_ADMIN_DSN = os.environ.get("PHOTOBOT_TEST_PG_DSN", "postgresql://127.0.0.1:5432/test")
# One Redis database per pytest-xdist worker (gw0 → 15, gw1 → 13, …; 14 belongs to the benchmarks), on the server
# PHOTOBOT_TEST_REDIS_SERVER names (two checkouts testing at once each use their own server).
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_REDIS_SERVER = os.environ.get("PHOTOBOT_TEST_REDIS_SERVER", "redis://127.0.0.1:6379").rstrip("/")
REDIS_TEST_URL = os.environ.get("PHOTOBOT_TEST_REDIS_URL", f"{_REDIS_SERVER}/{max(0, 15 - 2 * _WORKER)}")


def pg_url_for(dbname: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{dbname}"


async def create_pg_database(prefix: str = "photobot_t") -> str:
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
