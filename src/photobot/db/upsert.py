"""`INSERT ... ON CONFLICT DO NOTHING` for SQLite and PostgreSQL: how "exactly once" rows are written.

The unique constraint decides which of two racing writers creates the row; the loser inserts nothing and
raises nothing, so the caller's transaction (a job completing, a credit settling) carries on untouched.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession


async def dialect_name(session: AsyncSession) -> str:
    connection = await session.connection()
    return connection.dialect.name


async def insert_ignore(
    session: AsyncSession, model: type[Any], rows: list[dict[str, Any]], conflict: list[str]
) -> list[Any]:
    """Insert `rows`, skipping those that collide on `conflict`; returns the ORM objects actually inserted."""
    if not rows:
        return []
    name = await dialect_name(session)
    if name == "postgresql":
        stmt: Any = postgresql.insert(model)
    elif name == "sqlite":
        stmt = sqlite.insert(model)
    else:  # pragma: no cover - the project supports these two
        raise RuntimeError(f"unsupported database dialect {name}")
    stmt = stmt.values(rows).on_conflict_do_nothing(index_elements=conflict).returning(model)
    result = await session.execute(stmt)
    return list(result.scalars().all())
