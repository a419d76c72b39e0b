"""What a request handler may use, typed: the `Runtime`, the provider assembly, the rate limiter, the token and
style caches.

`create_app`'s lifespan puts them on `app.state`; handlers read them through these accessors instead of reaching
into the untyped `app.state` themselves.
"""

from __future__ import annotations

from typing import cast

from starlette.requests import HTTPConnection

from photobot.jobs.accept import StyleCache
from photobot.payments.gateway import Payments
from photobot.providers.assembly import Providers
from photobot.runtime import Runtime
from photobot.settings import Settings
from photobot.web.ratelimit import RequestLimiter
from photobot.web.tokens import TokenCache


def runtime(conn: HTTPConnection) -> Runtime:
    return cast(Runtime, conn.app.state.runtime)


def providers(conn: HTTPConnection) -> Providers:
    return cast(Providers, conn.app.state.providers)


def limiter(conn: HTTPConnection) -> RequestLimiter:
    return cast(RequestLimiter, conn.app.state.limiter)


def tokens(conn: HTTPConnection) -> TokenCache:
    return cast(TokenCache, conn.app.state.tokens)


def styles(conn: HTTPConnection) -> StyleCache:
    return cast(StyleCache, conn.app.state.styles)


def settings(conn: HTTPConnection) -> Settings:
    return cast(Settings, conn.app.state.settings)


def payments(conn: HTTPConnection) -> Payments:
    return cast(Payments, conn.app.state.payments)
