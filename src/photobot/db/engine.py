"""Database engine and sessions, SQLite and PostgreSQL alike.

SQLite is the embedded default. Its writers are serialised: every transaction starts with `BEGIN IMMEDIATE`
so two writers never deadlock on a lock upgrade, and `busy_timeout` makes the second one wait instead of
failing. PostgreSQL runs the same code; the dispatcher adds `FOR UPDATE SKIP LOCKED` there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)
_ON_COMMIT = "photobot.on_commit"


class Database:
    """Owns the engine and hands out sessions; one per process, opened in the app's lifespan."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 32) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        # No pre-ping: it costs a round trip on every checkout. A connection that died (a database restart) fails
        # its statement once; SQLAlchemy then invalidates the whole pool and the caller's retry gets a new one.
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # A fixed pool, no overflow: overflow connections are opened and closed under load (a new PostgreSQL
            # backend each time); a request waiting a moment for a pooled connection is cheaper.
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_timeout=10, pool_recycle=3600)
            kwargs["connect_args"] = {"timeout": 5, "command_timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _serialise_sqlite_writers(self.engine)
        self.sessionmaker = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._driver_sql: dict[int, tuple[sa.ClauseElement, str, tuple[str, ...], dict[str, Any]]] = {}

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def fetchrow(self, statement: sa.ClauseElement, params: Mapping[str, Any]) -> Any:
        """Run one statement on PostgreSQL as its own transaction, straight on the pooled asyncpg connection, and
        return its first row (or None).

        For the few statements on a hot path that do all of their work themselves: SQLAlchemy's execution layer
        costs more CPU than the statement (about 0.3 ms per call on the callback path; docs/benchmarks.md). The
        statement (textual, or Core built with named `bindparam`s) is compiled to asyncpg's `$n` form once; values
        are passed as asyncpg takes them (aware datetimes, JSON as text) and come back as asyncpg decodes them
        (JSON columns decoded: SQLAlchemy registered the codecs on the connection).
        """
        return await self._on_driver(statement, params, "fetchrow")

    async def fetch(self, statement: sa.ClauseElement, params: Mapping[str, Any]) -> list[Any]:
        """`fetchrow`, returning every row."""
        return list(await self._on_driver(statement, params, "fetch"))

    async def _on_driver(self, statement: sa.ClauseElement, params: Mapping[str, Any], method: str) -> Any:
        compiled = self._driver_sql.get(id(statement))
        if compiled is None:
            # `render_postcompile` expands `IN (…)` lists into one placeholder per item; their values (and any
            # other literal the statement was built with) come from the compiled defaults, while a placeholder
            # built without a value (`bindparam("x", None)`, or any textual `:x`) must be passed in `params`.
            done = statement.compile(dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True})
            order = tuple(getattr(done, "positiontup", None) or ())
            defaults = {k: v for k, v in done.params.items() if v is not None}
            compiled = (statement, done.string, order, defaults)
            self._driver_sql[id(statement)] = compiled
        _, sql, order, defaults = compiled
        values = [params[name] if name in params or name not in defaults else defaults[name] for name in order]
        # The pool's connection without a `Connection` around it: `engine.connect()` cost three greenlet switches
        # and two wrapper objects (about 45 µs of CPU per call, docs/design-notes.md). No transaction is opened
        # through SQLAlchemy, so returning the connection (its reset is a rollback of nothing) needs no I/O.
        raw = await self.engine.raw_connection()
        try:
            driver = raw.driver_connection
            assert driver is not None, "a checked-out connection has its driver connection"
            return await getattr(driver, method)(sql, *values)
        except BaseException as exc:
            if not _connection_lost(exc):
                raise
            # The connection died (a database restart): do what SQLAlchemy does on a disconnect in its own
            # execution path — drop this connection, replace every older pooled one at its next checkout — and
            # raise what it raises then, which the app answers with 503 `database_unavailable`.
            await greenlet_spawn(self.engine.sync_engine.pool._invalidate, raw, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise sa.exc.DBAPIError(sql, values, exc, hide_parameters=True, connection_invalidated=True) from exc
        finally:
            raw.close()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


def _connection_lost(exc: BaseException) -> bool:
    """A driver error that leaves the connection unusable (a restart, the network, a cancelled round trip).

    `InternalClientError` belongs here: when the server terminates an idle backend, its FATAL message can arrive
    before the socket closes, and asyncpg then refuses the next statement on that connection with "cannot switch
    to state …; another operation is in progress" instead of a connection error (seen in CI after
    `pg_terminate_backend`).
    """
    import asyncpg  # type: ignore[import-untyped]  # untyped upstream

    if isinstance(exc, asyncpg.exceptions.PostgresError):
        return str(getattr(exc, "sqlstate", "") or "").startswith(("08", "57P"))
    lost = (
        asyncpg.exceptions.InterfaceError,
        asyncpg.exceptions.InternalClientError,
        OSError,
        asyncio.CancelledError,
        TimeoutError,
    )
    return isinstance(exc, lost)


def _serialise_sqlite_writers(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @sa.event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


async def execute_dml(session: AsyncSession, statement: sa.Executable) -> int:
    """Run an UPDATE or DELETE; returns how many rows it changed (what conditional updates decide on)."""
    result = await session.execute(statement)
    return int(cast(CursorResult[Any], result).rowcount or 0)


def on_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run `action` right after `session`'s transaction commits; never when it rolls back.

    This is how a state change owns its side effects (waking a dispatcher, telling live pages) even when it runs
    inside a caller's transaction: the effect waits for the commit that makes the change visible, and a
    rolled-back change has none. Actions must be quick and must not block (schedule I/O, don't await it).
    """
    session.sync_session.info.setdefault(_ON_COMMIT, []).append(action)


@sa.event.listens_for(Session, "after_commit")
def _run_on_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint was released: the transaction has not committed yet
        return
    for action in session.info.pop(_ON_COMMIT, []):
        try:
            action()
        except Exception:  # an effect must never undo or fail a committed change
            log.exception("after-commit action failed")


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop_on_rollback(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:  # the outermost transaction: its effects will never happen
        session.info.pop(_ON_COMMIT, None)
