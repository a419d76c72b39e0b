"""What a request handler may use, typed: the process's `Runtime`, the provider assembly and the rate limiter.

`create_app`'s lifespan puts them on `app.state`; handlers read them through these accessors instead of reaching
into the untyped `app.state` themselves.
"""

from __future__ import annotations

from typing import cast

from starlette.requests import HTTPConnection

from photobot.payments.gateway import Payments
from photobot.providers.assembly import Providers
from photobot.runtime import Runtime
from photobot.settings import Settings
from photobot.web.ratelimit import RequestLimiter


def runtime(conn: HTTPConnection) -> Runtime:
    return cast(Runtime, conn.app.state.runtime)


def providers(conn: HTTPConnection) -> Providers:
    return cast(Providers, conn.app.state.providers)


def limiter(conn: HTTPConnection) -> RequestLimiter:
    return cast(RequestLimiter, conn.app.state.limiter)


def settings(conn: HTTPConnection) -> Settings:
    return cast(Settings, conn.app.state.settings)


def payments(conn: HTTPConnection) -> Payments:
    return cast(Payments, conn.app.state.payments)
