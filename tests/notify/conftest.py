"""Fixtures of the notification tests: migrated databases (SQLite and PostgreSQL), SMTP, HTTP capture, storage.

Named `notify_*` so they never collide with the shared fixtures in tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from photobot.db import Database
from photobot.migrate import upgrade
from photobot.models import metadata
from photobot.settings import Settings
from tests.notify.helpers import DirStorage, HttpCapture, make_style

PG_ADMIN_DSN = os.environ.get("PHOTOBOT_TEST_PG_DSN", "postgresql://127.0.0.1:5432/test")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
async def notify_pg_url() -> AsyncIterator[str]:
    name = f"photobot_notify_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    await asyncio.to_thread(upgrade, url)
    yield url
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def notify_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("notify-sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def notify_pg_clean_url(notify_pg_url: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    db = Database(notify_pg_url)
    try:
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await db.close()
    return notify_pg_url


@pytest.fixture
def notify_sqlite_url(notify_sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "notify.db"
    shutil.copyfile(notify_sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def notify_db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("notify_sqlite_url" if request.param == "sqlite" else "notify_pg_clean_url")


@pytest.fixture
async def notify_db(notify_db_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database: a fresh SQLite file, or the session's PostgreSQL database truncated."""
    db = Database(notify_db_url)
    await make_style(db)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def notify_sqlite(notify_sqlite_url: str) -> AsyncIterator[Database]:
    """SQLite only, for tests whose point is not the database."""
    db = Database(notify_sqlite_url)
    await make_style(db)
    try:
        yield db
    finally:
        await db.close()


@dataclass
class SMTPSink:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"mailto://{self.host}:{self.port}?from=booth@photobot.test&mode=insecure"


@pytest.fixture
def notify_smtp() -> Iterator[SMTPSink]:
    from aiosmtpd.controller import Controller

    sink = SMTPSink("127.0.0.1", _free_port())

    class Collector:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            sink.envelopes.append(envelope)
            sink.messages.append(message_from_bytes(envelope.content))
            return "250 Message accepted for delivery"

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # the test server logs recipients itself
    controller = Controller(Collector(), hostname=sink.host, port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def dead_smtp_url() -> str:
    """An SMTP URL where nothing listens: connections are refused at once."""
    return f"mailto://127.0.0.1:{_free_port()}?from=booth@photobot.test&mode=insecure"


@pytest.fixture
def http_capture() -> Iterator[HttpCapture]:
    capture = HttpCapture().start()
    yield capture
    capture.stop()


@pytest.fixture
def notify_storage(tmp_path: Path) -> DirStorage:
    return DirStorage(tmp_path / "media")


@pytest.fixture
def notify_settings(tmp_path: Path) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "var_dir": tmp_path / "var",
            "public_base_url": "https://booth.example.com",
            "poll_interval_s": 0.05,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return factory
