"""`Database.fetchrow` (one statement straight on the pooled asyncpg connection) behaves like SQLAlchemy's own
execution when the server drops the connection (a restart): the statement fails once with a `DBAPIError` marked
`connection_invalidated` (what the app answers with 503 `database_unavailable`), and the next one runs on a new
connection instead of meeting the dead one again."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy as sa

from photobot.db import Database
from tests.support.databases import PG_ADMIN_DSN

BACKEND = sa.text("SELECT pg_backend_pid() AS pid")


async def test_a_connection_the_server_dropped_fails_once_and_is_replaced(pg_database: Database) -> None:
    (pid,) = await pg_database.fetchrow(BACKEND, {})
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    with pytest.raises(sa.exc.DBAPIError) as raised:
        await pg_database.fetchrow(BACKEND, {})  # the pool hands out the connection whose backend is gone
    assert raised.value.connection_invalidated
    (replacement,) = await pg_database.fetchrow(BACKEND, {})
    assert replacement != pid
