"""Fixtures of the outbound webhook tests: a real receiver that verifies signatures (`tests/support/webhooks.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.webhooks import Receiver, open_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with open_receiver() as env:
        yield env
