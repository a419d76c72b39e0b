"""Fixtures for API tests: a served app (no simulator, no dispatcher) with a seeded event, tokens and styles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from photobot.db import Database
from photobot.settings import Settings
from tests.support.stack import Stack, open_app


@pytest.fixture
async def api(database: Database, make_settings: Callable[..., Settings]) -> AsyncIterator[Stack]:
    async with open_app(database, make_settings) as env:
        yield env
