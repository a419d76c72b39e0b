"""The admin API refuses a body over its 256 KB cap while it streams: a 300 MB upload is never held (the review saw
a web process grow from 123 MB to 710 MB before the 413). The app is served in this process, so its peak RSS is
this process's; the client's generator holds one 64 KB chunk at a time."""

from __future__ import annotations

import resource
from collections.abc import AsyncIterator

import httpx

from photobot.db import Database
from tests.support.stack import StackFactory

CHUNK = b"x" * 65536
TOTAL = 300 * 1024 * 1024


async def test_a_huge_admin_body_is_refused_mid_stream(database: Database, stack: StackFactory) -> None:
    async with stack(database, run_dispatcher=False) as env:
        sent = 0

        async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse it up front
            nonlocal sent
            while sent < TOTAL:
                sent += len(CHUNK)
                yield CHUNK

        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        headers = {**env.admin, "Content-Type": "application/json"}
        try:
            response = await env.client.post("/v1/admin/events", content=body(), headers=headers)
        except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
            response = None  # the server answered and closed while we were still sending: also a refusal
        if response is not None:
            assert response.status_code == 413, response.text
            assert response.json()["code"] == "payload_too_large"
        grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
        assert grown_mib < 64, f"peak RSS grew {grown_mib:.0f} MiB for a {TOTAL >> 20} MiB body"
        events = await env.client.get("/v1/admin/events", headers=env.admin)
        assert len(events.json()["items"] if isinstance(events.json(), dict) else events.json()) == 1
