"""Alembic environment: runs migrations over the async engine of `photobot.db`.

The URL is taken from `config.attributes["url"]` (set by `photobot.db.migrate`) or from the settings.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from alembic import context
from sqlalchemy.engine import Connection

from photobot.db import Database
from photobot.db.models import metadata
from photobot.settings import load_settings

config = context.config


def _do_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(_do_run)
            await conn.commit()
    finally:
        await db.close()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _do_run(connection)
        return
    url = config.attributes.get("url") or load_settings().resolved_database_url
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run_async(url))
        return
    # Called from code that already runs an event loop: migrate on a thread with its own loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _run_async(url)).result()


run()
