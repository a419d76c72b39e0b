"""The httpx transport whose connections all go through `PinnedBackend`.

httpx builds its httpcore pool with the default network backend and offers no parameter to change it, so this
subclass replaces the pool right after construction (the `_pool` attribute is how httpx's own transport holds
it; `tests/net` fails loudly if that ever changes, because every refusal test depends on it). Proxies are
never used (`trust_env=False`): a proxy would do its own DNS lookup and undo the pinning.
"""

from __future__ import annotations

import ssl

import httpcore
import httpx

from photobot.net.backend import PinnedBackend
from photobot.net.tls import client_context


class PinnedTransport(httpx.AsyncHTTPTransport):
    """HTTP/1.1 transport (no proxies, no HTTP/2) that connects only to addresses `backend` has checked."""

    def __init__(
        self,
        backend: PinnedBackend,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=50, max_keepalive_connections=10, keepalive_expiry=5)
        context = ssl_context or client_context()
        super().__init__(verify=context, trust_env=False, limits=limits)
        self.backend = backend
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )
