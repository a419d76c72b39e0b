"""`GET /v1/styles`: the active styles a kiosk may offer (id and name), for any valid client token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.runtime import Runtime
from photobot.services.styles import list_styles
from photobot.web.auth import require_client


async def get_styles(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    await require_client(request)
    async with runtime.db.session() as session:
        styles = await list_styles(session, active_only=True)
    body = {"styles": [{"id": s.id, "name": s.name} for s in styles]}
    return JSONResponse(body, headers={"Cache-Control": "private, max-age=60"})


routes = [Route("/v1/styles", get_styles, methods=["GET"])]
