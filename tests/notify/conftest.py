"""Fixtures of the notification tests: migrated databases (SQLite and PostgreSQL), SMTP, HTTP capture, storage.

Named `notify_*` so they never collide with the shared fixtures in tests/conftest.py.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from photobot.db import Database
from photobot.settings import Settings
from tests.support.notify import DirStorage, HttpCapture
from tests.support.seed import make_style
from tests.support.servers import free_port
from tests.support.smtp import SMTPServer


@pytest.fixture(params=["sqlite", "postgresql"])
def notify_db_url(request: pytest.FixtureRequest) -> str:
    """The shared migrated databases (tests/conftest.py), without the ledger audit: these tests insert jobs
    directly, with no credit reservation, because credits are not what they are about."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


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
async def notify_sqlite(sqlite_url: str) -> AsyncIterator[Database]:
    """SQLite only, for tests whose point is not the database."""
    db = Database(sqlite_url)
    await make_style(db)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def notify_smtp(smtp_server: SMTPServer) -> SMTPServer:
    """The shared aiosmtpd server (tests/conftest.py); the test server logs recipients itself, so quiet it."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    return smtp_server


@pytest.fixture
def dead_smtp_url() -> str:
    """An SMTP URL where nothing listens: connections are refused at once."""
    return f"mailto://127.0.0.1:{free_port()}?from=booth@photobot.test&mode=insecure"


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
