"""SafeFetcher over real sockets on loopback.

Most tests use a fetcher whose address policy allows exactly 127.0.0.1 (and http): the local test server is
reachable, while 10/8, 192.168/16, 169.254.169.254, ::1, ... stay refused exactly as in production. That lets
a real redirect from the local server to a private address prove the refusal happens before any connection.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from photobot.net import (
    AddressNotAllowed,
    AddressPolicy,
    FetchFailed,
    FetchTimeout,
    SafeFetcher,
    TooLarge,
    UrlNotAllowed,
)
from photobot.net.transport import PinnedTransport
from tests.support.http_server import Exchange, FakeDNS, LocalServer

MB = 1024 * 1024


@pytest_asyncio.fixture
async def fetcher(fake_dns: FakeDNS) -> AsyncIterator[SafeFetcher]:
    """Production rules except that 127.0.0.1 (only) and plain http are allowed."""
    async with SafeFetcher(
        allow_private=False,
        allow_http=True,
        address_policy=AddressPolicy.allowing(["127.0.0.1/32"]),
        resolver=fake_dns,
        connect_timeout=1.0,
        read_timeout=0.5,
        timeout=3.0,
    ) as f:
        yield f


@pytest_asyncio.fixture
async def strict() -> AsyncIterator[SafeFetcher]:
    """Exactly the production configuration (allow_private=False), OS resolver."""
    async with SafeFetcher(allow_private=False, connect_timeout=1.0, timeout=2.0) as f:
        yield f


def ok(body: bytes, content_type: str = "image/png"):
    async def handler(ex: Exchange) -> None:
        await ex.respond(200, body, {"Content-Type": content_type})

    return handler


def redirect(location: str, status: int = 302):
    async def handler(ex: Exchange) -> None:
        await ex.respond(status, b"", {"Location": location})

    return handler


# --- success --------------------------------------------------------------------------------------------


async def test_stream_to_file_path(fetcher: SafeFetcher, server: LocalServer, tmp_path: Path) -> None:
    body = b"\x89PNG" + bytes(range(256)) * 400
    server.routes["/img.png"] = ok(body, "image/png; charset=binary")
    dest = tmp_path / "out.bin"
    result = await fetcher.stream_to_file(server.url("/img.png?sig=1"), dest, max_bytes=MB)
    assert dest.read_bytes() == body
    assert result.size == len(body)
    assert result.content_type == "image/png"
    assert result.final_url == server.url("/img.png?sig=1")


async def test_stream_to_file_object_and_hostname(fetcher: SafeFetcher, server: LocalServer) -> None:
    server.routes["/a"] = ok(b"hello", "text/plain")
    out = io.BytesIO()
    result = await fetcher.stream_to_file(server.url("/a", host="images.test"), out, max_bytes=10)
    assert out.getvalue() == b"hello"
    assert result.size == 5


async def test_stream_variant_yields_chunks(fetcher: SafeFetcher, server: LocalServer) -> None:
    body = b"x" * 300_000
    server.routes["/big"] = ok(body)
    async with fetcher.stream(server.url("/big"), max_bytes=MB) as resp:
        assert resp.status_code == 200
        assert resp.content_length == len(body)
        received = b"".join([chunk async for chunk in resp.aiter_bytes()])
    assert received == body


async def test_allow_private_allows_loopback_and_http(server: LocalServer) -> None:
    server.routes["/a"] = ok(b"dev")
    async with SafeFetcher(allow_private=True, timeout=2.0) as dev:
        out = io.BytesIO()
        await dev.stream_to_file(server.url("/a"), out, max_bytes=10)
    assert out.getvalue() == b"dev"


async def test_from_settings(make_settings) -> None:
    settings = make_settings(allow_private_networks=True, provider_connect_timeout_s=2.0, provider_timeout_s=7.0)
    async with SafeFetcher.from_settings(settings) as f:
        assert f.allow_http is True
        assert f.policy.allow_private is True
        assert f.timeout == 7.0
    async with SafeFetcher.from_settings(make_settings(allow_private_networks=False)) as f:
        assert f.allow_http is False
        assert not f.policy.is_allowed("127.0.0.1")


def test_transport_really_uses_the_pinned_backend(fetcher: SafeFetcher) -> None:
    """Every refusal below relies on httpx keeping its pool in `_pool`; fail loudly if that changes."""
    transport = fetcher._client._transport
    assert isinstance(transport, PinnedTransport)
    assert transport._pool._network_backend is fetcher.backend


# --- refused addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/",
        "https://10.0.0.1/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:a9fe:a9fe]/",  # ::ffff:169.254.169.254
        "https://[::1]/",
        "https://0.0.0.0/",
        "https://192.168.0.1/",
        "https://100.64.1.1/",
    ],
)
async def test_private_literals_are_refused(strict: SafeFetcher, url: str) -> None:
    with pytest.raises(AddressNotAllowed) as info:
        await strict.stream_to_file(url, io.BytesIO(), max_bytes=MB)
    assert info.value.code == "address_not_allowed"


async def test_loopback_server_is_refused_without_connecting(server: LocalServer) -> None:
    server.routes["/a"] = ok(b"secret")
    async with SafeFetcher(allow_private=False, allow_http=True, timeout=2.0) as f:
        with pytest.raises(AddressNotAllowed):
            await f.stream_to_file(server.url("/a"), io.BytesIO(), max_bytes=MB)
        with pytest.raises(AddressNotAllowed):
            await f.stream_to_file(server.url("/a", host="[::ffff:127.0.0.1]"), io.BytesIO(), max_bytes=MB)
    assert server.connections == 0


async def test_http_is_refused_when_private_networks_are_not_allowed(strict: SafeFetcher) -> None:
    with pytest.raises(UrlNotAllowed) as info:
        await strict.stream_to_file("http://example.com/a.jpg", io.BytesIO(), max_bytes=MB)
    assert info.value.code == "url_not_allowed"


@pytest.mark.parametrize("host", ["internal.test", "metadata.test", "mixed.test", "mapped.test"])
async def test_hostname_resolving_to_private_address_is_refused(
    fetcher: SafeFetcher, server: LocalServer, host: str
) -> None:
    server.routes["/a"] = ok(b"secret")
    with pytest.raises(AddressNotAllowed):
        await fetcher.stream_to_file(server.url("/a", host=host), io.BytesIO(), max_bytes=MB)
    assert server.connections == 0


async def test_unresolvable_host_fails(fetcher: SafeFetcher) -> None:
    with pytest.raises(FetchFailed):
        await fetcher.stream_to_file("http://nowhere.test/a", io.BytesIO(), max_bytes=MB)


async def test_dns_rebinding_connects_to_the_checked_address_only(server: LocalServer) -> None:
    """First answer allowed, later answers private: the fetch uses the first answer, no second lookup."""
    dns = FakeDNS({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    policy = AddressPolicy.allowing(["127.0.0.1/32"])
    server.routes["/a"] = ok(b"pinned")
    async with SafeFetcher(allow_private=False, allow_http=True, address_policy=policy, resolver=dns) as f:
        out = io.BytesIO()
        await f.stream_to_file(server.url("/a", host="rebind.test"), out, max_bytes=MB)
        assert out.getvalue() == b"pinned"
        assert dns.calls == ["rebind.test"]
        assert server.connections == 1
    # A fresh connection resolves again, gets the private answer, and is refused.
    async with SafeFetcher(allow_private=False, allow_http=True, address_policy=policy, resolver=dns) as f:
        with pytest.raises(AddressNotAllowed):
            await f.stream_to_file(server.url("/a", host="rebind.test"), io.BytesIO(), max_bytes=MB)
    assert server.connections == 1


async def test_dns_rebinding_first_answer_private_is_refused(server: LocalServer) -> None:
    dns = FakeDNS({"rebind.test": [["10.0.0.1"], ["127.0.0.1"]]})
    policy = AddressPolicy.allowing(["127.0.0.1/32"])
    async with SafeFetcher(allow_private=False, allow_http=True, address_policy=policy, resolver=dns) as f:
        with pytest.raises(AddressNotAllowed):
            await f.stream_to_file(server.url("/a", host="rebind.test"), io.BytesIO(), max_bytes=MB)
    assert dns.calls == ["rebind.test"]
    assert server.connections == 0


# --- redirects ------------------------------------------------------------------------------------------


async def test_redirects_are_followed_and_rechecked(fetcher: SafeFetcher, server: LocalServer) -> None:
    server.routes["/start"] = redirect("/middle")
    server.routes["/middle"] = redirect(server.url("/end", host="images.test"), 307)
    server.routes["/end"] = ok(b"done")
    out = io.BytesIO()
    result = await fetcher.stream_to_file(server.url("/start"), out, max_bytes=MB)
    assert out.getvalue() == b"done"
    assert result.final_url == server.url("/end", host="images.test")
    assert server.requests == ["/start", "/middle", "/end"]


@pytest.mark.parametrize(
    "location",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.2]/",
        "http://internal.test/x",
        "http://metadata.test/x",
    ],
)
async def test_redirect_to_private_address_is_refused(fetcher: SafeFetcher, server: LocalServer, location: str) -> None:
    server.routes["/start"] = redirect(location)
    started = time.monotonic()
    with pytest.raises(AddressNotAllowed):
        await fetcher.stream_to_file(server.url("/start"), io.BytesIO(), max_bytes=MB)
    assert time.monotonic() - started < 0.5  # refused before any connection attempt, not timed out
    assert server.requests == ["/start"]


async def test_redirect_to_other_scheme_is_refused(fetcher: SafeFetcher, server: LocalServer) -> None:
    server.routes["/start"] = redirect("file:///etc/passwd")
    with pytest.raises(UrlNotAllowed):
        await fetcher.stream_to_file(server.url("/start"), io.BytesIO(), max_bytes=MB)


async def test_redirect_outside_allowlist_is_refused(fetcher: SafeFetcher, server: LocalServer) -> None:
    server.routes["/start"] = redirect(server.url("/end", host="images.test"))
    server.routes["/end"] = ok(b"x")
    with pytest.raises(UrlNotAllowed):
        await fetcher.stream_to_file(
            server.url("/start"), io.BytesIO(), max_bytes=MB, allowed_hosts=[f"127.0.0.1:{server.port}"]
        )
    assert server.requests == ["/start"]


async def test_too_many_redirects(fetcher: SafeFetcher, server: LocalServer) -> None:
    server.routes["/loop"] = redirect("/loop")
    with pytest.raises(FetchFailed, match="redirects"):
        await fetcher.stream_to_file(server.url("/loop"), io.BytesIO(), max_bytes=MB)
    assert len(server.requests) == fetcher.max_redirects + 1


# --- allowlist ------------------------------------------------------------------------------------------


async def test_allowlist_hit_and_miss(fetcher: SafeFetcher, server: LocalServer) -> None:
    server.routes["/r.png"] = ok(b"result")
    out = io.BytesIO()
    await fetcher.stream_to_file(
        server.url("/r.png", host="images.test"),
        out,
        max_bytes=MB,
        allowed_hosts=["file.kie.ai", f"images.test:{server.port}"],
    )
    assert out.getvalue() == b"result"
    with pytest.raises(UrlNotAllowed):
        await fetcher.stream_to_file(
            server.url("/r.png", host="other.test"),
            io.BytesIO(),
            max_bytes=MB,
            allowed_hosts=["file.kie.ai", f"images.test:{server.port}"],
        )
    with pytest.raises(UrlNotAllowed):  # a bare host means the default port only
        await fetcher.stream_to_file(
            server.url("/r.png", host="images.test"), io.BytesIO(), max_bytes=MB, allowed_hosts=["images.test"]
        )
    assert server.connections == 1


# --- size cap -------------------------------------------------------------------------------------------


async def test_content_length_over_cap_is_refused_before_reading(
    fetcher: SafeFetcher, server: LocalServer, tmp_path: Path
) -> None:
    server.routes["/big"] = ok(b"x" * 5000)
    dest = tmp_path / "big.bin"
    with pytest.raises(TooLarge) as info:
        await fetcher.stream_to_file(server.url("/big"), dest, max_bytes=4999)
    assert info.value.code == "too_large"
    assert not dest.exists()  # the partial file is removed


async def test_cap_enforced_mid_stream_without_content_length(fetcher: SafeFetcher, server: LocalServer) -> None:
    total = 200 * MB

    async def endless(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n")
        chunk = b"\xff" * 65536
        while server.bytes_sent < total:
            await ex.send(chunk)

    server.routes["/endless"] = endless
    out = io.BytesIO()
    with pytest.raises(TooLarge):
        await fetcher.stream_to_file(server.url("/endless"), out, max_bytes=MB)
    assert out.tell() <= MB
    await asyncio.sleep(0.05)
    assert server.bytes_sent < 20 * MB  # the download stopped early, not after 200 MB


async def test_lying_content_length_is_still_capped(fetcher: SafeFetcher, server: LocalServer) -> None:
    async def liar(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n" + b"y" * 5000)

    server.routes["/liar"] = liar
    out = io.BytesIO()
    await fetcher.stream_to_file(server.url("/liar"), out, max_bytes=100)
    assert out.getvalue() == b"y" * 10  # h11 stops at the announced length; never more than the cap


# --- timeouts and failures ------------------------------------------------------------------------------


async def test_stalled_server_times_out(fetcher: SafeFetcher, server: LocalServer) -> None:
    async def stall(ex: Exchange) -> None:
        await asyncio.sleep(30)

    server.routes["/stall"] = stall
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as info:
        await fetcher.stream_to_file(server.url("/stall"), io.BytesIO(), max_bytes=MB)
    assert info.value.code == "fetch_timeout"
    assert time.monotonic() - started < 2.0


async def test_trickling_server_hits_total_timeout(server: LocalServer, fake_dns: FakeDNS) -> None:
    """Each chunk arrives within the read timeout, but the whole download exceeds the total timeout."""

    async def trickle(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for _ in range(100):
            await ex.send(b"z")
            await asyncio.sleep(0.1)

    server.routes["/trickle"] = trickle
    policy = AddressPolicy.allowing(["127.0.0.1/32"])
    async with SafeFetcher(
        allow_private=False, allow_http=True, address_policy=policy, read_timeout=0.5, timeout=0.8
    ) as f:
        started = time.monotonic()
        with pytest.raises(FetchTimeout):
            await f.stream_to_file(server.url("/trickle"), io.BytesIO(), max_bytes=MB)
        assert time.monotonic() - started < 1.5


async def test_resolver_timeout(server: LocalServer) -> None:
    async def slow_dns(host: str) -> list[str]:
        await asyncio.sleep(10)
        return ["127.0.0.1"]

    policy = AddressPolicy.allowing(["127.0.0.1/32"])
    async with SafeFetcher(
        allow_private=False, allow_http=True, address_policy=policy, resolver=slow_dns, connect_timeout=0.3
    ) as f:
        with pytest.raises(FetchTimeout):
            await f.stream_to_file(server.url("/a", host="slow.test"), io.BytesIO(), max_bytes=MB)


async def test_http_error_status_and_no_secret_in_message(fetcher: SafeFetcher, server: LocalServer) -> None:
    with pytest.raises(FetchFailed) as info:
        await fetcher.stream_to_file(server.url("/missing?X-Amz-Signature=SECRET"), io.BytesIO(), max_bytes=MB)
    assert info.value.status_code == 404
    assert info.value.code == "fetch_failed"
    assert "SECRET" not in str(info.value)
    assert "/missing" in str(info.value)
    problem = info.value.to_problem()
    assert problem.code == "fetch_failed" and "SECRET" not in (problem.detail or "")


async def test_refusal_messages_hide_query(strict: SafeFetcher) -> None:
    with pytest.raises(AddressNotAllowed) as info:
        await strict.stream_to_file("https://10.0.0.1/x?token=SECRET", io.BytesIO(), max_bytes=MB)
    with pytest.raises(UrlNotAllowed) as info2:
        await strict.stream_to_file("http://example.com/x?token=SECRET", io.BytesIO(), max_bytes=MB)
    assert "SECRET" not in str(info.value) + str(info2.value)


async def test_connection_refused_is_fetch_failed(fetcher: SafeFetcher) -> None:
    probe = await LocalServer().start()
    port = probe.port
    await probe.stop()  # nothing listens on this port any more
    with pytest.raises(FetchFailed):
        await fetcher.stream_to_file(f"http://127.0.0.1:{port}/", io.BytesIO(), max_bytes=MB)


# --- TLS: pinned to the IP, verified against the name ---------------------------------------------------


async def test_tls_uses_hostname_for_sni_and_verification(tls, fake_dns: FakeDNS) -> None:
    srv = await LocalServer().start(ssl_context=tls.server_context)
    srv.routes["/secure.png"] = ok(b"tls-body")
    srv.routes["/downgrade"] = redirect(f"http://images.test:{srv.port}/secure.png")
    policy = AddressPolicy.allowing(["127.0.0.1/32"])
    try:
        async with SafeFetcher(
            allow_private=False,
            address_policy=policy,
            resolver=fake_dns,
            ssl_context=tls.client_context,
            timeout=3.0,
        ) as f:
            out = io.BytesIO()
            await f.stream_to_file(srv.url("/secure.png", host="images.test", scheme="https"), out, max_bytes=MB)
            assert out.getvalue() == b"tls-body"
            # Same IP, different name: the certificate does not match, so the pinned IP alone is not enough.
            with pytest.raises(FetchFailed):
                await f.stream_to_file(
                    srv.url("/secure.png", host="other.test", scheme="https"), io.BytesIO(), max_bytes=MB
                )
            # https -> http downgrade on redirect is refused when http is not allowed.
            with pytest.raises(UrlNotAllowed):
                await f.stream_to_file(
                    srv.url("/downgrade", host="images.test", scheme="https"), io.BytesIO(), max_bytes=MB
                )
    finally:
        await srv.stop()


async def test_response_object_is_closed_after_stream(fetcher: SafeFetcher, server: LocalServer) -> None:
    server.routes["/a"] = ok(b"abc")
    async with fetcher.stream(server.url("/a"), max_bytes=10) as resp:
        pass  # body never read: leaving the block must still release the connection
    assert resp.bytes_read == 0
    assert isinstance(resp.headers, httpx.Headers)


async def test_localhost_via_system_resolver_is_refused(strict: SafeFetcher) -> None:
    with pytest.raises(AddressNotAllowed):
        await strict.stream_to_file("https://localhost/", io.BytesIO(), max_bytes=MB)


async def test_sync_resolver_and_garbage_answers(server: LocalServer) -> None:
    server.routes["/a"] = ok(b"sync")
    policy = AddressPolicy.allowing(["127.0.0.1/32"])
    table = {"sync.test": ["127.0.0.1"], "garbage.test": ["not-an-ip"], "empty.test": []}
    async with SafeFetcher(
        allow_private=False, allow_http=True, address_policy=policy, resolver=lambda host: table[host]
    ) as f:
        out = io.BytesIO()
        await f.stream_to_file(server.url("/a", host="sync.test"), out, max_bytes=MB)
        assert out.getvalue() == b"sync"
        for host in ("garbage.test", "empty.test"):
            with pytest.raises(FetchFailed):
                await f.stream_to_file(server.url("/a", host=host), io.BytesIO(), max_bytes=MB)


def test_a_slow_reader_holds_at_most_the_read_ahead_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast host and a slow reader, on uvloop (what `photobot serve` runs): what the connection reads ahead of its
    reader stays near `READ_AHEAD_BYTES`, not the whole body (uvloop reads up to 32 x 256 KB per wake-up and anyio
    queued all of it). Measured as the largest queue anyio held while 20 MB went through."""
    import socket
    import threading

    import uvloop

    from photobot.net import backend
    from photobot.net.backend import READ_AHEAD_BYTES

    bounded: list[Any] = []

    def bound_and_keep(stream: Any, limit: int) -> None:
        backend_bound(stream, limit)
        bounded.append(stream._stream._protocol.read_queue)  # anyio's queue, to watch from the reader

    backend_bound = backend.bound_read_ahead
    monkeypatch.setattr(backend, "bound_read_ahead", bound_and_keep)

    body = b"\x00" * 20_000_000
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)

    threading.Thread(target=serve, daemon=True).start()
    largest = 0

    async def main() -> None:
        nonlocal largest
        fetcher = SafeFetcher(allow_private=True)
        try:
            async with fetcher.stream(f"http://127.0.0.1:{port}/big", max_bytes=len(body)) as response:
                (read_queue,) = bounded
                received = 0
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    largest = max(largest, sum(map(len, read_queue)))
                    await asyncio.sleep(0.001)  # a reader slower than loopback
                assert received == len(body)
        finally:
            await fetcher.aclose()
            listener.close()

    uvloop.run(main())
    assert largest <= READ_AHEAD_BYTES + 256 * 1024, largest
