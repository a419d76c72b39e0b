"""`GET /v1/styles`: the styles a kiosk offers, in its order, each with an example image to show.

An event token gets its event's selection (`Event.styles`, in that order, inactive styles left out) or, when the
event chose none, every active style; app and admin tokens get every active style. `takes_photo` tells the kiosk
whether to take a photo at all (False: a text-to-image style, submitted without `image`); `preview_url` is a
signed storage link valid for `PHOTOBOT_SIGNED_URL_TTL_S`, longer than the answer may be cached.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.api.schemas import StyleChoice, StylesOut
from photobot.db.models import Event, TokenScope
from photobot.jobs.accept import takes_photo
from photobot.providers.models import provider_for_style
from photobot.runtime import Runtime
from photobot.services.styles import offered_styles
from photobot.web.auth import require_client

CACHE_S = 60


async def get_styles(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    client = await require_client(request)
    async with runtime.db.session() as session:
        event = (
            await session.get(Event, client.event_id) if client.scope == TokenScope.event and client.event_id else None
        )
        styles = await offered_styles(session, event)
    ttl = max(runtime.settings.signed_url_ttl_s, CACHE_S * 2)
    choices = [
        StyleChoice(
            id=s.id,
            name=s.name,
            takes_photo=takes_photo(provider_for_style(runtime.settings, s.provider, s.model)[1]),
            preview_url=await runtime.storage.url(s.preview_key, ttl) if s.preview_key else None,
        )
        for s in styles
    ]
    body = StylesOut(styles=choices).model_dump(mode="json")
    return JSONResponse(body, headers={"Cache-Control": f"private, max-age={CACHE_S}"})


routes = [Route("/v1/styles", get_styles, methods=["GET"])]
