"""`GET /v1/event`: what a kiosk must show before a guest submits — the event's title and language, and whether
(and with which words) the guest must consent. An event token reads its own event; app and admin tokens name one
with `?event_id=`."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photobot.db.models import Event
from photobot.jobs.retention import retention_days
from photobot.pages.render import strings_for
from photobot.problems import Problem, not_found
from photobot.web import context
from photobot.web.auth import require_client, resolve_owner


class KioskEventOut(BaseModel):
    """An event as a kiosk presents it to guests."""

    id: int
    title: str
    language: str
    consent_required: bool = Field(description="Submissions need `consent: true`, else 422 consent_required.")
    consent_text: str = Field(description="The event's consent wording, or the default in the event's language.")
    retention_days: int = Field(description="Days the guest's photo is kept.")


def consent_text(event: Event, days: int) -> str:
    """The words of the kiosk's consent box: the organiser's own, or ours in the event's language."""
    return event.consent_text or strings_for(event.language)["consent_label"].format(days=days)


async def get_event(request: Request) -> Response:
    runtime = context.runtime(request)
    client = await require_client(request)
    raw = request.query_params.get("event_id")
    try:
        named = int(raw) if raw else None
    except ValueError:
        raise Problem(422, "validation_error", "Invalid request", "event_id must be a whole number.") from None
    event_id, _ = resolve_owner(client, named, None)
    async with runtime.db.session() as session:
        event = await session.get(Event, event_id) if event_id is not None and 0 < event_id < 2**31 else None
    if event is None or event.id is None:
        raise not_found("No such event.")
    days = retention_days(runtime.settings, event)
    body = KioskEventOut(
        id=event.id, title=event.title or event.name, language=event.language,
        consent_required=event.consent_required, consent_text=consent_text(event, days), retention_days=days,
    )  # fmt: skip
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})  # per token: never cached


routes = [Route("/v1/event", get_event, methods=["GET"])]
