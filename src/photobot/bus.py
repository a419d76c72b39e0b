"""Wake-ups and job updates between processes: Redis pub/sub when configured, in-process otherwise.

Five kinds of messages travel here:
- `wake`: "a job became due" (a callback arrived, a job was accepted), so an idle dispatcher reacts in
  milliseconds instead of at its next poll;
- `notify`: "a notification was queued" (a job completed or failed), so an idle notifier sends it at once;
- `webhooks`: "an outbound webhook message was written" (or replayed), so an idle webhook sender sends it at once;
- `job:{public_id}` / `event:{event_id}`: a job changed state, for live status pages and gallery walls (SSE) on any
  web process;
- `tokens`: a client token was revoked, so every web process drops it from its token cache at once.

Nothing here is a source of truth: a lost message costs latency (the dispatcher, notifier and webhook sender
still poll, pages still re-read the database), never data. So publishing never blocks the caller:
`wake_dispatchers`, `wake_notifiers`, `wake_webhook_senders` and `job_changed` are plain functions that schedule
the publish in the background (a wake-up already on its way absorbs the next ones, and under load one publish
per `COALESCE_S` carries them all), and when Redis is down they degrade to this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

WAKE_CHANNEL = "photobot:wake"
NOTIFY_CHANNEL = "photobot:notify"
WEBHOOKS_CHANNEL = "photobot:webhooks"
JOB_CHANNEL_PREFIX = "photobot:job:"
EVENT_CHANNEL_PREFIX = "photobot:event:"
TOKENS_CHANNEL = "photobot:tokens"
COALESCE_S = 0.02


class Bus:
    def __init__(self, redis: Redis | None = None) -> None:
        self.redis = redis
        self.wake_event = asyncio.Event()  # dispatchers of this process wait on it
        self.notify_event = asyncio.Event()  # notifiers of this process wait on it
        self.webhook_event = asyncio.Event()  # webhook senders of this process wait on it
        self._local: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[str] = set()  # coalesced channels with a publish on its way
        self._again: set[str] = set()  # ... and asked for once more meanwhile
        self.token_revoked_listeners: list[Callable[[int], None]] = []  # e.g. the token cache's `forget`

    # --- fire-and-forget signals ---------------------------------------------------------------------
    def wake_dispatchers(self) -> None:
        """Tell every dispatcher that work is due."""
        self.wake_event.set()
        self._coalesced(WAKE_CHANNEL)

    def wake_notifiers(self) -> None:
        """Tell every notifier that a notification is due."""
        self.notify_event.set()
        self._coalesced(NOTIFY_CHANNEL)

    def wake_webhook_senders(self) -> None:
        """Tell every webhook sender that a delivery is due."""
        self.webhook_event.set()
        self._coalesced(WEBHOOKS_CHANNEL)

    def job_changed(self, job_id: str, public_id: str, status: str, event_id: int | None = None) -> None:
        """Live pages of the job (and, once it completed, the event's gallery walls) should look again."""
        self._spawn(self.publish(JOB_CHANNEL_PREFIX + public_id, {"job_id": job_id, "status": status}))
        if status == "completed" and event_id is not None:
            self._spawn(self.publish(EVENT_CHANNEL_PREFIX + str(event_id), {"job_id": job_id}))

    def token_revoked(self, token_id: int) -> None:
        """A client token was revoked: this process forgets it now, the others when the message reaches them."""
        self._revoked(token_id)
        self._spawn(self.publish(TOKENS_CHANNEL, {"token_id": token_id}))

    def _revoked(self, token_id: int) -> None:
        for listener in self.token_revoked_listeners:
            listener(token_id)

    # --- publish and subscribe ---------------------------------------------------------------------------
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

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (a synchronous caller at shutdown): the poll catches up
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _coalesced(self, channel: str) -> None:
        if channel in self._in_flight:
            self._again.add(channel)
            return
        self._in_flight.add(channel)
        self._spawn(self._publish_until_quiet(channel))

    async def _publish_until_quiet(self, channel: str) -> None:
        try:
            while True:
                self._again.discard(channel)
                await self.publish(channel, {})
                # Wakes asked for in the next moment ride on one more publish: at most one per COALESCE_S under
                # load (this process's own dispatchers and notifiers were woken at once, without Redis).
                await asyncio.sleep(COALESCE_S)
                if channel not in self._again:
                    return
        finally:
            self._in_flight.discard(channel)

    def _deliver_local(self, channel: str, message: dict[str, Any]) -> None:
        if channel == WAKE_CHANNEL:
            self.wake_event.set()
            return
        if channel == NOTIFY_CHANNEL:
            self.notify_event.set()
            return
        if channel == WEBHOOKS_CHANNEL:
            self.webhook_event.set()
            return
        if channel == TOKENS_CHANNEL:
            if isinstance(message.get("token_id"), int):
                self._revoked(message["token_id"])
            return
        for queue in list(self._local.get(channel, ())):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(message)

    async def _publish_redis(self, channel: str, message: dict[str, Any]) -> bool:
        if self.redis is None or (self._listener is not None and self._listener.done()):
            return False
        try:
            await self.redis.publish(channel, json.dumps(message))
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("bus: redis publish failed, delivering locally", extra={"error": type(exc).__name__})
            return False
        return True

    # --- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Relay what other processes publish to this process (only processes that listen need this)."""
        if self.redis is not None:
            self._listener = asyncio.create_task(self._listen(), name="bus-listener")

    async def close(self, grace_s: float = 2.0) -> None:
        """Let publishes on their way finish (briefly), then stop listening."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
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
                await pubsub.psubscribe(
                    WAKE_CHANNEL, NOTIFY_CHANNEL, WEBHOOKS_CHANNEL, TOKENS_CHANNEL,
                    JOB_CHANNEL_PREFIX + "*", EVENT_CHANNEL_PREFIX + "*",
                )  # fmt: skip
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
                self.notify_event.set()
                self.webhook_event.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
