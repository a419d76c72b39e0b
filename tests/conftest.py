"""Shared test harness: real PostgreSQL, Redis, S3 (moto's server) and SMTP (aiosmtpd).

- `database`: a migrated `Database`, parametrized over SQLite and PostgreSQL; after each test the credit
  and job invariants are audited (see `photobot.db.audit`).
- `sqlite_database` / `pg_database`: one backend only.
- `redis_url`: a dedicated, flushed Redis database.
- `s3_storage_url`: a bucket on moto's standalone S3 server.
- `smtp_server`: a real SMTP server collecting messages.
- `make_settings(**overrides)`: test settings isolated from the environment and any `.env`.
- `stack`: a factory serving the app with the kie simulator (`tests/support/stack.py`); `ops_app`: the same,
  reading jobs with the admin token; `pages` / `shared_pages`: the app alone, per test or per module.

Helper code lives in `tests/support/` (images, seeding, the served stack, servers); tests import it from there,
never from a conftest or another test module (`tests/test_architecture.py` checks).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from photobot.db import Database
from photobot.db.audit import audit
from photobot.db.migrate import upgrade
from photobot.db.models import metadata
from photobot.settings import Settings, load_settings
from tests.support.databases import REDIS_TEST_URL, create_pg_database, drop_pg_database, pg_url_for
from tests.support.servers import free_port
from tests.support.smtp import Collector, SMTPServer
from tests.support.stack import Stack, StackFactory, module_stack, open_app, open_stack

# The files that take minutes run first. `pytest-xdist --dist loadfile` hands whole files to the workers in
# collection order, and the docs' examples (tests/test_docs.py, ~140 s) collect near the end: started last, they
# were the run's tail (simulated from a run's junit times: 589 s in collection order, 563 s with these first, the
# ideal being the sum over three workers, 563 s).
LONG_FILES = ("tests/test_docs.py", "tests/cli/test_cli.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid.split("::", 1)[0] not in LONG_FILES)  # stable: the rest keep their order


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


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    from aiosmtpd.controller import Controller

    server = SMTPServer("127.0.0.1", free_port())
    controller = Controller(Collector(server), hostname=server.host, port=server.port)
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


@pytest.fixture
def stack(make_settings: Callable[..., Settings]) -> StackFactory:
    """`stack(db, sim_config=None, *, run_dispatcher=True, credits=20, ...)`: see `open_stack`."""

    def start(db: Database, sim_config: Any = None, **options: Any) -> Any:
        return open_stack(db, make_settings, sim_config, **options)

    return start


@pytest.fixture
def ops_app(make_settings: Callable[..., Settings]) -> StackFactory:
    """`stack`, reading GET /v1/jobs/{id} with the admin token (the operations tests)."""

    def start(db: Database, sim_config: Any = None, **options: Any) -> Any:
        return open_stack(db, make_settings, sim_config, view_as="admin", **options)

    return start


@pytest.fixture
async def pages(database: Database, make_settings: Callable[..., Settings]) -> AsyncIterator[Stack]:
    async with open_app(database, make_settings) as env:
        yield env


@pytest.fixture(scope="module")
async def shared_pages(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """One served app (SQLite) for a whole module: tests make their own jobs and events, so they do not meet."""
    async with module_stack(sqlite_template, tmp_path_factory) as env:
        yield env
