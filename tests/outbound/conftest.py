"""Fixtures of the outbound webhook tests: a real receiver that verifies signatures (`tests/support/webhooks.py`),
and `plain_db`, the migrated databases without the ledger audit, for tests that insert jobs and balances directly
(no credit reservation) because credits are not what they are about."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from photobot.db import Database
from tests.support.seed import make_style
from tests.support.webhooks import Receiver, open_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with open_receiver() as env:
        yield env


@pytest.fixture(params=["sqlite", "postgresql"])
def plain_db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
async def plain_db(plain_db_url: str) -> AsyncIterator[Database]:
    db = Database(plain_db_url)
    await make_style(db)
    try:
        yield db
    finally:
        await db.close()
