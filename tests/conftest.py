"""Shared test harness: real PostgreSQL, Redis, S3 (moto's server) and SMTP (aiosmtpd).

- `database`: a migrated `Database`, parametrized over SQLite and PostgreSQL; after each test the credit
  and job invariants are audited (see `photobot.db.audit`).
- `sqlite_database` / `pg_database`: one backend only.
- `redis_url`: a dedicated, flushed Redis database.
- `s3_storage_url`: a bucket on moto's standalone S3 server.
- `smtp_server`: a real SMTP server collecting messages.
- `make_settings(**overrides)`: test settings isolated from the environment and any `.env`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from photobot.db import Database
from photobot.db.audit import audit
from photobot.db.migrate import upgrade
from photobot.db.models import metadata
from photobot.settings import Settings, load_settings
from tests.support.servers import free_port

# Fixtures of the served stack (step 1 of the test reorganisation: shared by several mirrored folders).
pytest_plugins = ["tests.support.engine", "tests.support.ops", "tests.support.pages"]

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


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PHOTOBOT_") and not name.startswith("PHOTOBOT_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
async def pg_migrated_url() -> AsyncIterator[str]:
    name = await create_pg_database()
    url = pg_url_for(name)
    await asyncio.to_thread(upgrade, url)
    yield url
    await drop_pg_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def _truncate_pg(url: str) -> None:
    db = Database(url)
    try:
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await db.close()


@pytest.fixture
async def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "photobot.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def pg_url(pg_migrated_url: str) -> str:
    await _truncate_pg(pg_migrated_url)
    return pg_migrated_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


async def _audited(url: str) -> AsyncIterator[Database]:
    db = Database(url)
    try:
        yield db
        violations = await audit(db)
        assert not violations, "invariant violations:\n" + "\n".join(violations)
    finally:
        await db.close()


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    async for db in _audited(db_url):
        yield db


@pytest.fixture
async def sqlite_database(sqlite_url: str) -> AsyncIterator[Database]:
    async for db in _audited(sqlite_url):
        yield db


@pytest.fixture
async def pg_database(pg_url: str) -> AsyncIterator[Database]:
    async for db in _audited(pg_url):
        yield db


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(REDIS_TEST_URL)
    await client.flushdb()
    await client.aclose()
    yield REDIS_TEST_URL


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_storage_url(s3_endpoint: str) -> str:
    import boto3

    bucket = f"photobot-{uuid.uuid4().hex[:10]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}?endpoint_url={s3_endpoint}&region=us-east-1&access_key=testing&secret_key=testing"


@dataclass
class SMTPServer:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"mailto://{self.host}:{self.port}?from=booth@photobot.test&mode=insecure"


class _Collector:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.server.envelopes.append(envelope)
        self.server.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    from aiosmtpd.controller import Controller

    server = SMTPServer("127.0.0.1", free_port())
    controller = Controller(_Collector(server), hostname=server.host, port=server.port)
    controller.start()
    yield server
    controller.stop()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "var_dir": tmp_path / "var",
            "secret_key": "test-secret-key-" + "x" * 32,
            "allow_private_networks": True,
            "log_level": "DEBUG",
        }
        values.update(overrides)
        return load_settings(env_file=None, **values)

    return factory
