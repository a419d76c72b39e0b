"""Wake-ups and job updates between processes: Redis pub/sub when configured, in-process otherwise.

Two kinds of messages travel here:
- `wake`: "a job became due" (a callback arrived, a job was accepted), so an idle dispatcher reacts in
  milliseconds instead of at its next poll;
- `job:{public_id}`: a job changed state, for live status pages (SSE) on any web process.

Nothing here is a source of truth: a lost message costs latency (the dispatcher still polls, pages still
re-read the database), never data. So when Redis is down, publishing degrades to the local process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

WAKE_CHANNEL = "photobot:wake"
JOB_CHANNEL_PREFIX = "photobot:job:"
EVENT_CHANNEL_PREFIX = "photobot:event:"


class Bus:
    def __init__(self, redis: Redis | None = None) -> None:
        self.redis = redis
        self.wake_event = asyncio.Event()
        self._local: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None

    # --- wake-ups --------------------------------------------------------------------------------
    async def wake(self) -> None:
        """Tell every dispatcher that work is due."""
        self.wake_event.set()
        await self._publish_redis(WAKE_CHANNEL, {})

    # --- job updates -----------------------------------------------------------------------------
    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        if not await self._publish_redis(channel, message):
            self._deliver_local(channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue receiving every message published on `channel` while the context is open."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self._local[channel].add(queue)
        try:
            yield queue
        finally:
            self._local[channel].discard(queue)
            if not self._local[channel]:
                del self._local[channel]

    def _deliver_local(self, channel: str, message: dict[str, Any]) -> None:
        if channel == WAKE_CHANNEL:
            self.wake_event.set()
            return
        for queue in list(self._local.get(channel, ())):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(message)

    async def _publish_redis(self, channel: str, message: dict[str, Any]) -> bool:
        if self.redis is None or self._listener is None or self._listener.done():
            return False
        try:
            await self.redis.publish(channel, json.dumps(message))
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("bus: redis publish failed, delivering locally", extra={"error": type(exc).__name__})
            return False
        return True

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.redis is not None:
            self._listener = asyncio.create_task(self._listen(), name="bus-listener")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None

    async def _listen(self) -> None:
        """Relay Redis messages to local subscribers; reconnect with backoff when Redis goes away."""
        assert self.redis is not None
        delay = 0.5
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(WAKE_CHANNEL, JOB_CHANNEL_PREFIX + "*", EVENT_CHANNEL_PREFIX + "*")
                delay = 0.5
                async for item in pubsub.listen():
                    if item.get("type") not in ("message", "pmessage"):
                        continue
                    channel = item["channel"]
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    try:
                        data = json.loads(item["data"])
                    except (ValueError, TypeError):
                        continue
                    self._deliver_local(channel, data)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: local delivery continues, we retry quietly
                log.warning("bus: redis subscription lost", extra={"error": type(exc).__name__})
                self.wake_event.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
