"""A tiny scriptable HTTP/1.1 server on loopback (plain or TLS) and a fake resolver for the fetcher tests.

The server is hand-written on asyncio streams so a test can make it stall, trickle, lie about Content-Length
or stream forever, and can count connections and bytes sent (to prove a refusal never connected and a size
cap stopped the download early). The fixtures that start them live in `tests/net/conftest.py`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Handler = Callable[["Exchange"], Awaitable[None]]


@dataclass
class Exchange:
    """One request as the handler sees it, with helpers to answer."""

    server: LocalServer
    method: str
    target: str
    headers: dict[str, str]
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        self.server.bytes_sent += len(data)
        await self.writer.drain()

    async def respond(self, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        head = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
        lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in head.items()]
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


@dataclass
class LocalServer:
    host: str = "127.0.0.1"
    routes: dict[str, Handler] = field(default_factory=dict)
    connections: int = 0
    requests: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> LocalServer:
        self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str, host: str | None = None, scheme: str = "http") -> str:
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def route(self, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[path] = handler
            return handler

        return register

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request_line = (await reader.readline()).decode()
            if not request_line:
                return
            method, target, _ = request_line.split(" ", 2)
            headers: dict[str, str] = {}
            while (line := (await reader.readline()).decode().strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.requests.append(target)
            handler = self.routes.get(target.split("?", 1)[0])
            exchange = Exchange(self, method, target, headers, writer)
            if handler is None:
                await exchange.respond(404, b"not found")
            else:
                await handler(exchange)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


class FakeDNS:
    """A resolver that answers from a table; a list of answers is served one per call (DNS rebinding)."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        answer = self.table.get(host)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if answer and isinstance(answer[0], list):
            index = min(self.calls.count(host) - 1, len(answer) - 1)
            return list(answer[index])
        return list(answer)  # type: ignore[arg-type]


@dataclass
class TLSFiles:
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext
