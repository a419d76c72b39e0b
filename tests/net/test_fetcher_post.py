"""`SafeFetcher.post` (how webhook messages leave): one request, the same URL and address rules as a GET, no
redirect followed, the whole exchange bounded in time and the answer read only up to a cap.

The fetcher allows exactly 127.0.0.1 (and http), so the loopback server is reachable while private addresses
stay refused as in production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from photobot.net import AddressNotAllowed, AddressPolicy, FetchFailed, FetchTimeout, SafeFetcher, UrlNotAllowed
from tests.support.http_server import Exchange, FakeDNS, LocalServer


@pytest_asyncio.fixture
async def fetcher(fake_dns: FakeDNS) -> AsyncIterator[SafeFetcher]:
    async with SafeFetcher(
        allow_private=False, allow_http=True, address_policy=AddressPolicy.allowing(["127.0.0.1/32"]),
        resolver=fake_dns, connect_timeout=1.0, timeout=1.0,
    ) as f:  # fmt: skip
        yield f


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None, seen: list[Exchange] | None = None):
    async def handler(ex: Exchange) -> None:
        if seen is not None:
            seen.append(ex)
        await ex.respond(status, body, headers)

    return handler


async def test_post_sends_body_and_headers_and_returns_the_answer(fetcher: SafeFetcher, server: LocalServer) -> None:
    seen: list[Exchange] = []
    server.routes["/hook"] = answer(204, seen=seen)
    result = await fetcher.post(
        server.url("/hook", host="images.test"), content=b'{"a":1}',
        headers={"Content-Type": "application/json", "webhook-id": "msg_1"}, max_bytes=100,
    )  # fmt: skip
    assert (result.status_code, result.body, result.truncated, result.is_success) == (204, b"", False, True)
    assert seen[0].method == "POST"
    assert seen[0].headers["webhook-id"] == "msg_1"
    assert seen[0].headers["content-length"] == "7"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_post_never_follows_a_redirect(fetcher: SafeFetcher, server: LocalServer, status: int) -> None:
    server.routes["/hook"] = answer(status, headers={"Location": "/elsewhere"})
    server.routes["/elsewhere"] = answer(200)
    result = await fetcher.post(server.url("/hook"), content=b"{}", headers={}, max_bytes=100)
    assert result.status_code == status and not result.is_success
    assert server.requests == ["/hook"]


async def test_post_reads_the_answer_only_up_to_the_cap(fetcher: SafeFetcher, server: LocalServer) -> None:
    server.routes["/hook"] = answer(500, b"e" * 200_000)
    result = await fetcher.post(server.url("/hook"), content=b"{}", headers={}, max_bytes=1000)
    assert (result.status_code, len(result.body), result.truncated) == (500, 1000, True)


@pytest.mark.parametrize("host", ["internal.test", "metadata.test", "mixed.test", "10.0.0.1", "[::1]"])
async def test_post_to_a_private_address_is_refused_before_connecting(
    fetcher: SafeFetcher, server: LocalServer, host: str
) -> None:
    with pytest.raises(AddressNotAllowed):
        await fetcher.post(f"http://{host}:{server.port}/hook", content=b"{}", headers={}, max_bytes=100)
    assert server.connections == 0


async def test_post_refuses_http_and_credentials_in_production() -> None:
    async with SafeFetcher(allow_private=False, timeout=1.0) as strict:
        with pytest.raises(UrlNotAllowed):
            await strict.post("http://example.com/hook", content=b"{}", headers={}, max_bytes=100)
        with pytest.raises(UrlNotAllowed):
            await strict.post("https://user:pw@example.com/hook", content=b"{}", headers={}, max_bytes=100)


async def test_post_is_bounded_in_time(fetcher: SafeFetcher, server: LocalServer) -> None:
    async def stall(ex: Exchange) -> None:
        await asyncio.sleep(30)

    server.routes["/hook"] = stall
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        await fetcher.post(server.url("/hook"), content=b"{}", headers={}, max_bytes=100, timeout=0.3)
    assert time.monotonic() - started < 2


async def test_post_to_a_closed_port_fails(fetcher: SafeFetcher, server: LocalServer) -> None:
    port = server.port
    await server.stop()
    with pytest.raises(FetchFailed):
        await fetcher.post(f"http://127.0.0.1:{port}/hook", content=b"{}", headers={}, max_bytes=100)
