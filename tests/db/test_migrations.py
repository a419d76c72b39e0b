"""Alembic migrations: upgrade to head and back to base on fresh databases, and the models agree with them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from photobot.db import Database
from photobot.db.migrate import downgrade, head_revision, upgrade
from photobot.db.models import metadata
from tests.support.databases import create_pg_database, drop_pg_database, pg_url_for

EXPECTED_TABLES = {t.name for t in metadata.sorted_tables}


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database (no tables at all) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    name = await create_pg_database("photobot_mig")
    try:
        yield pg_url_for(name)
    finally:
        await drop_pg_database(name)


async def _inspect(url: str, func: Any) -> Any:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(func)
    finally:
        await db.close()


def _tables(conn: sa.Connection) -> set[str]:
    return set(sa.inspect(conn).get_table_names())


def _version(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _diff(conn: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return compare_metadata(context, metadata)


async def test_upgrade_and_downgrade_on_a_fresh_database(fresh_url: str) -> None:
    assert await _inspect(fresh_url, _tables) == set()

    await asyncio.to_thread(upgrade, fresh_url)
    assert await _inspect(fresh_url, _tables) == EXPECTED_TABLES | {"alembic_version"}
    assert await _inspect(fresh_url, _version) == head_revision()

    # upgrading again is a no-op
    await asyncio.to_thread(upgrade, fresh_url)
    assert await _inspect(fresh_url, _version) == head_revision()

    await asyncio.to_thread(downgrade, fresh_url)
    assert await _inspect(fresh_url, _tables) <= {"alembic_version"}
    assert await _inspect(fresh_url, _version) is None

    # and back up again: the downgrade left nothing behind that blocks a new upgrade
    await asyncio.to_thread(upgrade, fresh_url)
    assert await _inspect(fresh_url, _tables) == EXPECTED_TABLES | {"alembic_version"}


async def test_models_and_migrations_agree(fresh_url: str) -> None:
    await asyncio.to_thread(upgrade, fresh_url)
    diff = await _inspect(fresh_url, _diff)
    assert diff == [], "models differ from the migrations (write a new Alembic revision):\n" + "\n".join(
        map(repr, diff)
    )


async def test_upgrade_from_a_running_event_loop(tmp_path: Path) -> None:
    """`upgrade` called directly inside a running loop (as the CLI's code paths may) still works."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'inloop.db'}"
    upgrade(url)
    assert await _inspect(url, _version) == head_revision()
