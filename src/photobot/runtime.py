"""The process's long-lived resources, opened once and passed explicitly to whoever needs them.

`Runtime.open(settings)` is used by the web app's lifespan, by `photobot worker` and by the CLI, so all three
see the same database engine, Redis client, HTTP client and storage configuration.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import httpx
from redis.asyncio import Redis

from photobot.bus import Bus
from photobot.db import Database
from photobot.intake import ImageProcessor
from photobot.net.fetcher import SafeFetcher
from photobot.net.tls import client_context
from photobot.settings import Settings
from photobot.signing import GallerySigner, ReachProbe
from photobot.storage import Storage, open_storage

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    storage: Storage
    http: httpx.AsyncClient
    bus: Bus
    fetcher: SafeFetcher
    images: ImageProcessor
    gallery_signer: GallerySigner
    reach_probe: ReachProbe
    ssl_context: ssl.SSLContext = field(default_factory=client_context)
    redis: Redis | None = None
    draining: bool = False

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[Runtime]:
        async with AsyncExitStack() as stack:
            db = Database(settings.resolved_database_url, pool_size=settings.database_pool_size)
            stack.push_async_callback(db.close)
            redis = None
            if settings.redis_url:
                redis = Redis.from_url(
                    settings.redis_url,
                    socket_timeout=settings.redis_timeout_s,
                    socket_connect_timeout=settings.redis_timeout_s,
                    health_check_interval=30,
                )
                stack.push_async_callback(redis.aclose)
            ssl_context = client_context()  # one per process, shared by every client (net/tls.py)
            http = httpx.AsyncClient(
                verify=ssl_context,
                timeout=httpx.Timeout(settings.provider_timeout_s, connect=settings.provider_connect_timeout_s),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            )
            stack.push_async_callback(http.aclose)
            secrets = settings.secret_keys()  # read once: in development it is a file under var/
            storage = open_storage(
                settings.resolved_storage_url, public_base_url=settings.public_base_url, secrets=secrets
            )
            stack.push_async_callback(storage.close)
            bus = Bus(redis)
            await bus.start()
            stack.push_async_callback(bus.close)
            fetcher = SafeFetcher.from_settings(settings, ssl_context=ssl_context)
            stack.push_async_callback(fetcher.aclose)
            images = ImageProcessor.from_settings(settings)
            if settings.allow_private_networks:
                log.warning(
                    "PHOTOBOT_ALLOW_PRIVATE_NETWORKS is on: http and private addresses are allowed "
                    "for URL inputs, results and webhook endpoints. Use it for development and tests only."
                )
            yield cls(
                settings=settings,
                db=db,
                storage=storage,
                http=http,
                bus=bus,
                fetcher=fetcher,
                images=images,
                gallery_signer=GallerySigner(secrets),
                reach_probe=ReachProbe(secrets),
                ssl_context=ssl_context,
                redis=redis,
            )
