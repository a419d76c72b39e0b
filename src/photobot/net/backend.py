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
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:  # try the next checked address (happy eyeballs, simplified)
                last_error = exc
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
