"""The `shop` fixture: a served app and the Mercado Pago simulator it talks to (tests/support/payments.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from photobot.db import Database
from photobot.settings import Settings
from tests.support.payments import Shop, open_shop


@pytest.fixture
async def shop(database: Database, make_settings: Callable[..., Settings]) -> AsyncIterator[Shop]:
    async for env in open_shop(database, make_settings):
        yield env
