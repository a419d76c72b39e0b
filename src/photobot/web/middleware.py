"""ASGI middleware: a request id on every request and log line, and HTTP metrics by route template.

`EdgeMiddleware` refuses control characters in the path and query (400 `invalid_characters`), takes the caller's
`X-Request-ID` when it looks like an id (letters, digits, `._-`, up to 64 characters), otherwise makes one; binds
it for logging (`request_id` on every line emitted while the request runs, including background work it starts)
and returns it in the `X-Request-ID` response header. It also counts every request by method, route *template*
(`/v1/jobs/{job_id}`; unmatched paths are `unmatched`, so scanners cannot blow up label cardinality) and status,
observes its duration, and counts provider callbacks by outcome (the receiver sets
`request.state.callback_outcome`; refusals are derived from the status).
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any
from urllib.parse import unquote_plus

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from photobot import metrics
from photobot.jsontext import JSONRefused, check_text
from photobot.logs import bind
from photobot.problems import Problem, problem_response

log = logging.getLogger("photobot.http")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CONVERTER = re.compile(r"\{(\w+):\w+\}")  # `{key:path}` → `{key}`, as in the OpenAPI document
WEBHOOK_PREFIX = "/webhooks/"


def new_request_id() -> str:
    """32 random hex digits (the shape of a uuid4's hex, without building a UUID on every request)."""
    return os.urandom(16).hex()


def _refused_characters(scope: Scope) -> bool:
    """A control or bidi-override character in the path or the query: refused before any route sees it (ids in
    paths and queries reach the database, where PostgreSQL rejects a NUL with an error, not an answer)."""
    try:
        check_text(scope["path"])
        query = scope.get("query_string", b"").decode("latin-1")
        check_text(unquote_plus(query) if "%" in query else query)  # without escapes it is the text as is
    except JSONRefused:
        return True
    return False


class EdgeMiddleware:
    """Request id, URL character policy and HTTP metrics in one pass (one wrapper around `send`, not two)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if _refused_characters(scope):
            problem = Problem(400, "invalid_characters", "Bad request", "The URL holds a control character.")
            await problem_response(problem, instance=None)(scope, receive, send)
            _observe(scope, 400, started)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _VALID_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with bind(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                _observe(scope, status, started)


def _observe(scope: Scope, status: int, started: float) -> None:
    route = route_template(scope)
    method = scope.get("method", "GET")
    elapsed = time.perf_counter() - started
    if log.isEnabledFor(logging.DEBUG):
        log.debug("http request", extra={"method": method, "route": route, "status": status,
                                         "duration_ms": round(elapsed * 1000, 1)})  # fmt: skip
    metrics.http_request(method, route, status, elapsed)
    if route.startswith(WEBHOOK_PREFIX) and method == "POST":
        outcome = scope.get("state", {}).get("callback_outcome")
        if outcome is None:
            outcome = metrics.CALLBACK_OUTCOME_BY_STATUS.get(status, f"http_{status}")
        metrics.callback(route.removeprefix(WEBHOOK_PREFIX), outcome)


def route_template(scope: Scope) -> str:
    """The path template of the route that served `scope` (`unmatched` when none did).

    Starlette's router records the route it chose in `scope["route"]` (a partial match, for a 405, too); the
    template of each route is worked out once. A request refused before routing falls back to matching here.
    """
    route = scope.get("route")
    if route is not None:
        return _template(route)
    app = scope.get("app")
    for candidate in getattr(app, "routes", None) or []:
        match, _ = candidate.matches(scope)
        if match != Match.NONE:
            return _template(candidate)
    return "unmatched"


def _template(route: BaseRoute) -> str:
    """Worked out once per route and kept on it (routes compare by value, so they cannot key a cache)."""
    found: str | None = getattr(route, "_photobot_template", None)
    if found is None:
        path = _CONVERTER.sub(r"{\1}", getattr(route, "path", "") or "")
        found = path.rstrip("/") + "/{path}" if isinstance(route, Mount) else (path or "unmatched")
        route._photobot_template = found  # type: ignore[attr-defined]
    return found


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            try:
                return bytes(value).decode("latin-1").strip()
            except Exception:  # pragma: no cover
                return None
    return None


def middleware() -> list[Any]:
    """The middleware stack for `create_app` (outermost first)."""
    from starlette.middleware import Middleware

    return [Middleware(EdgeMiddleware)]
