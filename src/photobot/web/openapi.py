"""OpenAPI 3.1: `GET /openapi.json` is built from the app's own routes and pydantic models; `GET /docs` renders it.

How a route gets documented:
- an endpoint decorated with `@operation(...)` carries its description (the admin API does this);
- other routes are described in `ROUTE_DOCS` below, keyed by (method, path template).
Request and response bodies are pydantic models; their JSON schemas come from `models_json_schema` (the same
models that validate the requests), so nothing is written twice. `undocumented(app)` lists every
route/method without a description: a test keeps it empty.

`/docs` is Swagger UI, served from the `swagger-ui-py` package's static files (no CDN, nothing fetched from the
internet): every operation with its parameters, bodies and schemas rendered as models, filterable by tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from photobot.api.event import KioskEventOut
from photobot.api.schemas import JobFields, JobRequest, JobView, StylesOut

Auth = Literal["client", "admin", "callback", "signed", None]


# --- shared response shapes ---------------------------------------------------------------------------------
class ProblemOut(BaseModel):
    """RFC 9457 problem details; `code` is the stable, machine-readable part."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str] = Field(description="Each part checked: database, storage, redis, backlog, … → ok.")


class CallbackAck(BaseModel):
    code: int = 200
    msg: str = "success"


class ProviderCallback(BaseModel):
    """A provider's callback body (kie.ai: `{code, msg, data: {taskId, state, resultJson, …}}`; fal: its own)."""

    model_config = {"extra": "allow"}


class JobMultipart(JobFields):
    """Multipart form: the fields of a job plus the photo as a file part."""

    image: bytes | None = Field(
        None, json_schema_extra={"format": "binary"},
        description="The guest's photo (JPEG, PNG, WebP…); left out for a text-to-image style (`takes_photo: false`).",
    )  # fmt: skip


class GuestJobOut(BaseModel):
    """The guest page's JSON: the job's public status."""

    model_config = {"extra": "allow"}
    status: str


# --- descriptions -------------------------------------------------------------------------------------------
@dataclass
class Operation:
    summary: str
    tags: list[str]
    auth: Auth = None
    body: type[BaseModel] | None = None
    body_content: str = "application/json"
    alt_bodies: dict[str, type[BaseModel]] = field(default_factory=dict)  # other content types
    query: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | str | None] = field(default_factory=dict)
    content: str = "application/json"  # the success response's content type
    description: str | None = None
    list_of: set[int] = field(default_factory=set)  # statuses whose body is a list of the model


OPENAPI_ATTR = "__openapi__"


def operation(**kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach an OpenAPI description to an endpoint function."""

    def attach(func: Callable[..., Any]) -> Callable[..., Any]:
        setattr(func, OPENAPI_ATTR, Operation(**kwargs))
        return func

    return attach


ERRORS = {401: ProblemOut, 403: ProblemOut, 404: ProblemOut, 422: ProblemOut}
_P = ProblemOut

ROUTE_DOCS: dict[tuple[str, str], Operation] = {
    ("GET", "/healthz"): Operation("Liveness: the process serves HTTP", ["operations"], responses={200: HealthOut}),
    ("GET", "/readyz"): Operation(
        "Readiness: stores reachable, not draining, due-job backlog fresh",
        ["operations"],
        responses={200: ReadyOut, 503: _P},
    ),
    ("GET", "/metrics"): Operation(
        "Prometheus metrics (text exposition format)", ["operations"], content="text/plain", responses={200: None}
    ),
    ("GET", "/openapi.json"): Operation("This document", ["operations"], responses={200: None}),
    ("GET", "/docs"): Operation("API documentation (HTML)", ["operations"], content="text/html", responses={200: None}),
    ("GET", "/docs/{name}"): Operation(
        "A file of the documentation page (Swagger UI, served locally)",
        ["operations"],
        content="text/plain",
        responses={200: None, 404: _P},
    ),
    ("POST", "/v1/jobs"): Operation(
        "Submit a guest's photo",
        ["jobs"],
        auth="client",
        body=JobRequest,
        alt_bodies={"multipart/form-data": JobMultipart},
        description="Answers 202 once the photo is stored and the credit reserved. `Idempotency-Key` header "
        "replays the first answer for the same request.",
        responses={202: JobView, 400: _P, 401: _P, 402: _P, 403: _P, 409: _P, 413: _P, 415: _P, 422: _P, 429: _P},
    ),
    ("GET", "/v1/jobs/{job_id}"): Operation(
        "Follow a job", ["jobs"], auth="client", responses={200: JobView, 304: None, 401: _P, 404: _P}
    ),
    ("GET", "/v1/event"): Operation(
        "The kiosk's event: title, language, consent rule and wording",
        ["jobs"],
        auth="client",
        responses={200: KioskEventOut, 401: _P, 403: _P, 404: _P, 422: _P},
    ),
    ("GET", "/v1/styles"): Operation(
        "The styles this token may offer (an event's selection, in its order)",
        ["jobs"],
        auth="client",
        responses={200: StylesOut, 401: _P},
    ),
    ("POST", "/webhooks/kie"): Operation(
        "kie.ai callback (tokenized URL)",
        ["callbacks"],
        auth="callback",
        body=ProviderCallback,
        responses={200: CallbackAck, 400: _P, 401: _P, 403: _P, 413: _P, 422: _P, 429: _P},
    ),
    ("POST", "/webhooks/fal"): Operation(
        "fal.ai webhook (tokenized URL, ED25519-signed)",
        ["callbacks"],
        auth="callback",
        body=ProviderCallback,
        responses={200: CallbackAck, 400: _P, 401: _P, 403: _P, 413: _P, 422: _P, 429: _P},
    ),
    ("GET", "/media/{key}"): Operation(
        "A stored photo through a time-limited signed link",
        ["media"],
        auth="signed",
        content="image/*",
        responses={200: None, 403: _P, 404: _P, 410: _P},
    ),
    ("GET", "/p/{public_id}"): Operation(
        "Guest page (HTML)", ["pages"], content="text/html", responses={200: None, 404: _P, 410: _P}
    ),
    ("GET", "/p/{public_id}.json"): Operation(
        "Guest page data", ["pages"], responses={200: GuestJobOut, 404: _P, 410: _P}
    ),
    ("GET", "/p/{public_id}/events"): Operation(
        "Live job updates (server-sent events)",
        ["pages"],
        content="text/event-stream",
        responses={200: None, 404: _P, 410: _P},
    ),
    ("GET", "/p/{public_id}/qr.png"): Operation(
        "Pickup QR code (PNG)", ["pages"], content="image/png", responses={200: None, 404: _P, 410: _P}
    ),
    ("GET", "/p/{public_id}/qr.svg"): Operation(
        "Pickup QR code (SVG)", ["pages"], content="image/svg+xml", responses={200: None, 404: _P, 410: _P}
    ),
    ("GET", "/e/{event_id}/gallery"): Operation(
        "Event gallery (HTML, signed link)",
        ["pages"],
        auth="signed",
        content="text/html",
        responses={200: None, 403: _P, 404: _P},
    ),
    ("GET", "/e/{event_id}/gallery/events"): Operation(
        "Live gallery updates (server-sent events)",
        ["pages"],
        auth="signed",
        content="text/event-stream",
        responses={200: None, 403: _P, 404: _P},
    ),
    ("GET", "/e/{event_id}/thumbs/{job_id}.jpg"): Operation(
        "Gallery thumbnail", ["pages"], auth="signed", content="image/jpeg", responses={200: None, 403: _P, 404: _P}
    ),
    ("GET", "/kiosk"): Operation("Reference kiosk (HTML)", ["pages"], content="text/html", responses={200: None}),
    ("GET", "/pages-static/{path}"): Operation(
        "Static assets of the pages", ["pages"], content="*/*", responses={200: None, 404: _P}
    ),
}


# --- walking the app ----------------------------------------------------------------------------------------
_CONVERTER = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-z]+))?\}")


def _template(path: str) -> tuple[str, dict[str, str]]:
    """`/e/{event_id:int}/x` → (`/e/{event_id}/x`, {"event_id": "int"})."""
    kinds: dict[str, str] = {}

    def repl(match: re.Match[str]) -> str:
        kinds[match.group(1)] = match.group(2) or "str"
        return "{" + match.group(1) + "}"

    return _CONVERTER.sub(repl, path), kinds


def iter_operations(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, dict[str, str], Any]]:
    """(method, path template, path param kinds, endpoint or None) for every route of the app."""
    for route in routes:
        if isinstance(route, Route):
            path, kinds = _template(prefix + route.path)
            methods = set(route.methods or {"GET"})
            if "GET" in methods:
                methods.discard("HEAD")  # HEAD comes with GET
            for method in sorted(methods):
                yield method, path, kinds, route.endpoint
        elif isinstance(route, Mount):
            inner = getattr(route, "routes", None)
            if inner:
                yield from iter_operations(list(inner), prefix + route.path)
            else:
                path, kinds = _template(prefix + route.path.rstrip("/") + "/{path}")
                yield "GET", path, {**kinds, "path": "path"}, None


def describe(method: str, path: str, endpoint: Any) -> Operation | None:
    found = getattr(endpoint, OPENAPI_ATTR, None)
    if isinstance(found, Operation):
        return found
    return ROUTE_DOCS.get((method, path))


def undocumented(app: Any) -> list[str]:
    return [
        f"{method} {path}"
        for method, path, _, endpoint in iter_operations(list(app.routes))
        if describe(method, path, endpoint) is None
    ]


# --- building the document ----------------------------------------------------------------------------------
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "client": [{"bearer": []}],
    "admin": [{"bearer": []}],
    "callback": [{"callbackToken": []}],
    "signed": [{"signedLink": []}],
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = schemas[model.__name__]
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop,
         **({"description": prop["description"]} if "description" in prop else {})}
        for name, prop in schema.get("properties", {}).items()
    ]  # fmt: skip


def build_spec(app: Any, *, title: str = "Photobot API", version: str | None = None) -> dict[str, Any]:
    ops = [
        (method, path, kinds, describe(method, path, endpoint))
        for method, path, kinds, endpoint in iter_operations(list(app.routes))
    ]
    models: set[type[BaseModel]] = {ProblemOut}
    for *_, op in ops:
        if op is None:
            continue
        for candidate in (op.body, op.query, *op.alt_bodies.values(), *op.responses.values()):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                models.add(candidate)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, top = models_json_schema([(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(top.get("$defs", {}))

    paths: dict[str, dict[str, Any]] = {}
    for method, path, kinds, op in ops:
        entry: dict[str, Any]
        if op is None:
            entry = {"summary": "(undocumented)", "responses": {"default": {"description": "undocumented"}}}
        else:
            entry = _operation_entry(method, path, kinds, op, schemas)
        paths.setdefault(path, {})[method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version or _version(),
            "description": "Backend of AI photo booths. Errors are RFC 9457 problem details with a stable `code`.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Client token (pbt_…). Admin routes need an admin-scope token.",
                },
                "callbackToken": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "token",
                    "description": "Signed callback token issued with the provider task.",
                },
                "signedLink": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "sig",
                    "description": "Time-limited signature made by the service.",
                },
            },
        },
    }


def _operation_entry(
    method: str, path: str, kinds: dict[str, str], op: Operation, schemas: dict[str, Any]
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "summary": op.summary,
        "tags": op.tags,
        "operationId": f"{method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
    }
    if op.description:
        entry["description"] = op.description
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "integer"} if kind == "int" else {"type": "string"}}
        for name, kind in kinds.items()
    ]  # fmt: skip
    if op.query is not None:
        params.extend(_query_parameters(op.query, schemas))
    if params:
        entry["parameters"] = params
    if op.body is not None or op.alt_bodies:
        content: dict[str, Any] = {}
        if op.body is not None:
            content[op.body_content] = {"schema": _ref(op.body)}
        for ctype, model in op.alt_bodies.items():
            content[ctype] = {"schema": _ref(model)}
        entry["requestBody"] = {"required": True, "content": content}
    if op.auth in SECURITY:
        entry["security"] = SECURITY[op.auth]
    responses: dict[str, Any] = {}
    for status, out in sorted(op.responses.items()):
        desc = _STATUS_TEXT.get(status, "Response")
        if isinstance(out, str):
            responses[str(status)] = {"description": out}
        elif out is None:
            body: dict[str, Any] = {} if status in (204, 304) else {"content": {op.content: {"schema": {}}}}
            responses[str(status)] = {"description": desc, **body}
        else:
            ctype = "application/problem+json" if out is ProblemOut else "application/json"
            schema: dict[str, Any] = _ref(out)
            if status in op.list_of:
                schema = {"type": "array", "items": schema}
            responses[str(status)] = {"description": desc, "content": {ctype: {"schema": schema}}}
    entry["responses"] = responses or {"200": {"description": "OK"}}
    return entry


_STATUS_TEXT = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No content", 304: "Not modified", 400: "Bad request",
    401: "Missing or invalid credentials", 402: "No credits left", 403: "Forbidden", 404: "Not found",
    409: "Conflict", 413: "Payload too large", 415: "Unsupported media type", 422: "Invalid request",
    429: "Too many requests", 503: "Not ready",
}  # fmt: skip


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("photobot")
    except Exception:
        return "0"


# --- endpoints ----------------------------------------------------------------------------------------------
async def openapi_json(request: Request) -> Response:
    spec = getattr(request.app.state, "openapi_spec", None)
    if spec is None:
        spec = build_spec(request.app)
        spec["servers"] = (
            [{"url": request.app.state.settings.public_base_url}] if hasattr(request.app.state, "settings") else []
        )
        request.app.state.openapi_spec = spec
    return JSONResponse(spec)


async def docs(request: Request) -> Response:
    return HTMLResponse(DOCS_HTML, headers={"Content-Security-Policy": DOCS_CSP})


async def docs_asset(request: Request) -> Response:
    """Swagger UI's own files, from the `swagger-ui-py` package (no CDN: /docs works offline); only these names."""
    name = request.path_params["name"]
    if name == "photobot-docs.js":
        return Response(DOCS_JS, media_type="text/javascript", headers=ASSET_HEADERS)
    if name not in DOCS_ASSETS:
        raise HTTPException(404, "Not found")
    return FileResponse(_swagger_static() / name, media_type=DOCS_ASSETS[name], headers=ASSET_HEADERS)


def _swagger_static() -> Path:
    import swagger_ui

    return Path(swagger_ui.__file__).resolve().parent / "static"


DOCS_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain",
}
ASSET_HEADERS = {"Cache-Control": "public, max-age=86400"}
# Swagger UI draws its icons as data: images and styles elements inline; everything else comes from us.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:"
)

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Photobot API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
</head>
<body><div id="swagger-ui"><p>Loading the API description (<a href="openapi.json">openapi.json</a>)…</p></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/photobot-docs.js"></script>
</body></html>
"""

# Relative to /docs, so the page also works under a path prefix. Models expanded one level, operations
# collapsed and filterable: the page is for reading; "Try it out" works with a bearer token.
DOCS_JS = """window.addEventListener("load", function () {
  var base = location.pathname.replace(/docs\\/?$/, "");
  window.ui = SwaggerUIBundle({
    url: base + "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    filter: true,
    docExpansion: "none",
    defaultModelsExpandDepth: 1,
    defaultModelExpandDepth: 2,
    displayRequestDuration: true,
    tryItOutEnabled: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""

routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Route("/docs/{name}", docs_asset, methods=["GET"]),
]
