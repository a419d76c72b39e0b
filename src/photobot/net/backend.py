"""An httpcore network backend that resolves, checks, and connects to the checked address: one DNS lookup.

Checking a hostname's addresses and then letting the HTTP client connect by name allows DNS rebinding: the
second lookup (the client's own) can answer with 127.0.0.1. Doing the lookup *inside* `connect_tcp`, checking
every answer and connecting to one of those exact IPs leaves no second lookup to exploit. httpcore still
wraps the socket in TLS with `server_hostname` set to the URL's host, so SNI and certificate verification
keep using the name, not the IP.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, cast

import anyio
import httpcore
from httpcore import AsyncNetworkBackend, AsyncNetworkStream

from photobot.net.addresses import AddressPolicy, parse_ip
from photobot.net.errors import AddressNotAllowed, FetchFailed, FetchTimeout

# host -> IP addresses as strings; may be sync or async. Injected by tests to fake DNS.
Resolver = Callable[[str], Awaitable[Sequence[str]] | Sequence[str]]

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


async def system_resolver(host: str) -> list[str]:
    """All addresses of `host` from the OS resolver (getaddrinfo on a thread), duplicates dropped, in order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


# What one connection may read ahead of its reader. anyio queues everything the event loop reads until the reading
# task runs again and only then pauses the transport; uvloop reads a readable socket up to 32 times 256 KB in one
# go, so 16 concurrent 20 MB downloads from a fast host held 93 MB of queued chunks (bench/memory.py).
READ_AHEAD_BYTES = 1024 * 1024


class _ReadAheadBound(asyncio.Protocol):
    """Sits between the event loop and anyio's stream protocol: passes everything on, and pauses the transport as
    soon as more than `limit` bytes wait in anyio's queue. anyio resumes it when its queue is empty (its own
    `receive` logic), so nothing waits forever."""

    def __init__(self, inner: Any, transport: asyncio.Transport, limit: int) -> None:
        self._inner, self._transport, self._limit = inner, transport, limit
        self._queue = inner.read_queue

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)
        if sum(map(len, self._queue)) > self._limit:
            self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        return cast("bool | None", self._inner.eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def bound_read_ahead(stream: AsyncNetworkStream, limit: int) -> None:
    """Bound what `stream` (httpcore's anyio stream over an asyncio transport) reads ahead of its reader. Streams
    of another shape (tests' fakes, another backend) are left as they are."""
    socket_stream = getattr(stream, "_stream", None)
    protocol = getattr(socket_stream, "_protocol", None)
    transport = getattr(socket_stream, "_transport", None)
    if protocol is None or transport is None or not hasattr(protocol, "read_queue"):
        return
    transport.set_protocol(_ReadAheadBound(protocol, transport, limit))


class PinnedBackend(AsyncNetworkBackend):
    """`connect_tcp(host)` = resolve once, refuse if any address is not allowed, connect to a checked IP."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver | None = None,
        inner: AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver: Resolver = resolver or system_resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def resolve_checked(self, host: str, timeout: float | None = None) -> list[str]:
        """The addresses to try for `host`; raises AddressNotAllowed if *any* of them is refused."""
        literal = parse_ip(host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                with anyio.fail_after(timeout):
                    answer = self._resolver(host)
                    if inspect.isawaitable(answer):
                        answer = await answer
            except TimeoutError:
                raise FetchTimeout(f"resolving {host} timed out") from None
            except OSError as exc:
                raise FetchFailed(f"could not resolve {host} ({exc.__class__.__name__})") from None
            parsed = [parse_ip(str(a)) for a in answer]
            if not parsed or None in parsed:
                raise FetchFailed(f"could not resolve {host} (no usable addresses)")
            addresses = [str(a) for a in parsed]
        refused = [a for a in addresses if not self._policy.is_allowed(a)]
        if refused:
            # One bad answer taints the name: a round-robin mix of public and private is an attack too.
            raise AddressNotAllowed(f"{host} resolves to an address that is not allowed")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        addresses = await self.resolve_checked(host, timeout)
        last_error: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:  # try the next checked address (happy eyeballs, simplified)
                last_error = exc
            else:
                bound_read_ahead(stream, READ_AHEAD_BYTES)
                return stream
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        raise AddressNotAllowed("unix sockets are never used by the fetcher")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
