"""The web application: `create_app(settings)` wires routes, error handlers and the lifespan.

Where a request goes, by path:
  /v1/jobs…          photobot/api/        kiosk and app API (intake, job status)
  /webhooks/{kie,fal} photobot/webhooks/   provider callbacks
  /v1/purchases…     photobot/api/        credit packs through Mercado Pago (webhook: /webhooks/mercadopago)
  /p/…, /e/…, /kiosk photobot/pages/      guest pages, gallery, reference kiosk
  /v1/admin/…        photobot/admin/      operator API
  /media/…           photobot/media.py    signed local-storage links
  /healthz, /readyz  photobot/health.py
The dispatcher (photobot/jobs/) runs inside the same process unless `run_dispatcher=False`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from photobot import admin
from photobot.api import event as event_api
from photobot.api import jobs as jobs_api
from photobot.api import purchases as purchases_api
from photobot.jobs.accept import StyleCache
from photobot.pages import purchase as purchase_page
from photobot.payments.gateway import Payments
from photobot.problems import Problem, handle_problem, problem_response
from photobot.providers.assembly import Providers
from photobot.runtime import Runtime
from photobot.settings import Settings
from photobot.web import health, media, middleware, openapi
from photobot.web import metrics as web_metrics
from photobot.web.ratelimit import RequestLimiter
from photobot.web.tokens import TokenCache
from photobot.webhooks import mercadopago as mercadopago_webhook
from photobot.webhooks import receiver as webhooks
from photobot.worker import Worker

log = logging.getLogger(__name__)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "payload_too_large"}
    problem = Problem(
        exc.status_code,
        codes.get(exc.status_code, f"http_{exc.status_code}"),
        exc.detail if isinstance(exc.detail, str) else "Error",
        headers=dict(exc.headers or {}),
    )
    return problem_response(problem, instance=request.url.path)


def _is_database_outage(exc: BaseException) -> bool:
    """Connection-level database failures (restart, network): the client should retry, nothing was done."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and str(getattr(exc.orig, "sqlstate", "") or "").startswith(("08", "57P")):
        return True  # connection exception / server shutting down or starting ("cannot connect now")
    return isinstance(exc, ConnectionError | TimeoutError) or (isinstance(exc, OSError) and exc.errno is not None)


async def _unhandled(request: Request, exc: Exception) -> Response:
    if _is_database_outage(exc):
        problem = Problem(
            503, "database_unavailable", "Service unavailable", "The database is unreachable; retry shortly.",
            headers={"Retry-After": "5"},
        )  # fmt: skip
        return problem_response(problem, instance=request.url.path)
    problem = Problem(500, "internal_error", "Internal server error", "Something went wrong on our side.")
    return problem_response(problem, instance=request.url.path)


async def _database_error(request: Request, exc: Exception) -> Response:
    """Database and socket errors are answered here, in Starlette's ExceptionMiddleware, which does not
    re-raise: the `Exception` handler runs in ServerErrorMiddleware, which re-raises after answering, and
    uvicorn then closes the connection, so a client still sending its body saw a reset instead of the 503."""
    if _is_database_outage(exc):
        log.warning("database unavailable: answered 503", extra={"error": type(exc).__name__})
        return await _unhandled(request, exc)
    raise exc  # anything else: ServerErrorMiddleware logs it and answers 500 problem+json


def _freeze_start_up_objects() -> None:
    """Move everything alive after start-up (modules, the app, the runtime: ~130,000 objects) out of the garbage
    collector's reach. A full collection walked them all, ~100 ms with the event loop stopped, every few thousand
    requests: that was the p99 of callback ingest (docs/benchmarks.md). What requests create is still collected."""
    gc.collect()
    gc.freeze()


def build_routes() -> list[BaseRoute]:
    from photobot.pages.routes import routes as pages  # guest pages, gallery, kiosk, /v1/styles

    # provider callbacks first: the busiest route, and Starlette tries the routes in order (no path overlaps)
    return [
        *webhooks.routes, *health.routes, *media.routes, *jobs_api.routes, *event_api.routes, *purchases_api.routes,
        *mercadopago_webhook.routes, *purchase_page.routes, *pages,
    ]  # fmt: skip


def create_app(settings: Settings, *, run_dispatcher: bool = True) -> Starlette:
    """The web app; with `run_dispatcher` (the embedded default) it also runs a worker in this process."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            Runtime.open(settings) as runtime,
            Providers.open(runtime, start_simulator=run_dispatcher) as providers,
            Payments.open(runtime) as payments,
        ):
            app.state.runtime = runtime
            app.state.providers = providers
            app.state.payments = payments
            app.state.limiter = RequestLimiter(settings.redis_url, timeout_s=settings.redis_timeout_s)
            app.state.tokens = TokenCache()
            app.state.styles = StyleCache()
            runtime.bus.token_revoked_listeners.append(app.state.tokens.forget)
            health.drain_on_signal(runtime, settings.drain_s)
            async with (
                Worker.running(runtime, providers, payments=payments) if run_dispatcher else contextlib.nullcontext()
            ):
                _freeze_start_up_objects()
                try:
                    yield
                finally:
                    gc.unfreeze()  # a process that opens apps one after another (tests) collects them again
                runtime.draining = True

    app = Starlette(
        routes=[*build_routes(), *web_metrics.routes, *openapi.routes, *admin.routes],
        middleware=middleware.middleware(),
        lifespan=lifespan,
        exception_handlers={
            Problem: handle_problem,
            HTTPException: _http_exception,
            DBAPIError: _database_error,
            OSError: _database_error,
            Exception: _unhandled,
        },
    )
    app.state.settings = settings
    return app
