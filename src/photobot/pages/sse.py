"""Server-Sent Events helpers: message framing and a streaming response that proxies do not buffer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

KEEPALIVE_S = 15.0  # a comment line this often keeps proxies and mobile networks from closing the stream
MAX_STREAM_S = 600.0  # then the server ends the stream and the browser reconnects (EventSource does that)
RETRY_MS = 3000

SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: do not buffer
    "X-Content-Type-Options": "nosniff",
}


def message(event: str, data: Any, *, id: str | None = None) -> str:
    lines = [f"event: {event}"]
    if id:
        lines.append(f"id: {id}")
    lines.extend(f"data: {line}" for line in json.dumps(data, separators=(",", ":")).splitlines())
    return "\n".join(lines) + "\n\n"


def comment(text: str = "keep-alive") -> str:
    return f": {text}\n\n"


def preamble() -> str:
    return f"retry: {RETRY_MS}\n\n"


async def next_message(queue: asyncio.Queue[dict[str, Any]], timeout: float) -> dict[str, Any] | None:
    """The next bus message (draining any backlog: only the latest matters), or None after `timeout`."""
    try:
        item = await asyncio.wait_for(queue.get(), timeout=timeout)
    except TimeoutError:
        return None
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            item = queue.get_nowait()
    return item


def stream(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)
