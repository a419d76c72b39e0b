"""What every CLI command shares: settings, a database session, JSON output and one-line errors."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.bus import Bus
from photobot.db import Database
from photobot.services import Invalid, NotFound
from photobot.settings import Settings, SettingsError, load_settings
from photobot.storage import Storage, open_storage

P = ParamSpec("P")
T = TypeVar("T")

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")


def settings_from_env() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc), code=2)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@asynccontextmanager
async def stores(settings: Settings) -> AsyncIterator[tuple[Database, Storage, Bus]]:
    """The database, the photo storage and the bus (Redis when configured, so live pages and workers in other
    processes hear what an operator did), for commands that change jobs."""
    db = Database(settings.resolved_database_url)
    storage = open_storage(
        settings.resolved_storage_url, public_base_url=settings.public_base_url, secrets=settings.secret_keys()
    )
    redis = Redis.from_url(settings.redis_url, socket_timeout=settings.redis_timeout_s) if settings.redis_url else None
    bus = Bus(redis)
    try:
        yield db, storage, bus
    finally:
        await bus.close()
        if redis is not None:
            await redis.aclose()
        await storage.close()
        await db.close()


@asynccontextmanager
async def storage_scope(settings: Settings) -> AsyncIterator[Storage]:
    """The photo storage alone (style previews)."""
    storage = open_storage(
        settings.resolved_storage_url, public_base_url=settings.public_base_url, secrets=settings.secret_keys()
    )
    try:
        yield storage
    finally:
        await storage.close()


@asynccontextmanager
async def session_scope(settings: Settings) -> AsyncIterator[AsyncSession]:
    db = Database(settings.resolved_database_url)
    try:
        async with db.session() as session:
            yield session
    finally:
        await db.close()


def run_async(func: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Run an async command body; turn domain errors into one line on stderr and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return asyncio.run(_coroutine(func(*args, **kwargs)))
        except (Invalid, NotFound) as exc:
            fail(str(exc))
        except SettingsError as exc:
            fail(str(exc), code=2)
        except OSError as exc:
            fail(f"cannot reach a store: {exc.__class__.__name__}: {exc.strerror or exc}")
        except SQLAlchemyError as exc:
            fail(database_error(exc))

    return wrapper


async def _coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


def database_error(exc: SQLAlchemyError) -> str:
    """One line naming a database failure ("no such table" means: run `photobot migrate`), without the SQL."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0][:200]
    missing_table = "no such table" in first or first.startswith("relation")
    hint = " (run `photobot migrate`)" if missing_table else ""
    return f"database error: {type(orig).__name__}: {first}{hint}"


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    """Print `data` as JSON (nothing else on stdout) or as human text."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    elif text is not None:
        click.echo(text(data))
    elif isinstance(data, list):
        for item in data:
            click.echo(_line(item))
    else:
        click.echo(_line(data))


def _line(item: Any) -> str:
    if isinstance(item, dict):
        return "  ".join(f"{k}={v}" for k, v in item.items() if v not in (None, [], {}))
    return str(item)
