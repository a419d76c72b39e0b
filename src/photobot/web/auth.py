"""Bearer client tokens for the API: who is calling and what they may touch."""

from __future__ import annotations

from starlette.requests import Request

from photobot.db.models import ClientToken, Job, Purchase, TokenScope
from photobot.problems import Problem, forbidden, unauthorized
from photobot.services.access import authenticate
from photobot.signing import hash_token
from photobot.web import context


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def require_client(request: Request, *scopes: TokenScope) -> ClientToken:
    """The caller's live token (401 otherwise); 403 when its scope is not among `scopes` (if given)."""
    token = bearer_token(request)
    if token is None:
        raise unauthorized("Send `Authorization: Bearer <token>`.")
    digest, cache = hash_token(token), context.tokens(request)
    record = cache.get(digest)
    if record is None:
        async with context.runtime(request).db.session() as session:
            record = await authenticate(session, token)
        if record is None:
            raise unauthorized("The token is unknown or revoked.")
        cache.put(digest, record)
    if scopes and record.scope not in scopes:
        raise forbidden("This token's scope does not allow that.")
    request.state.client = record
    return record


def can_see_job(client: ClientToken, job: Job) -> bool:
    """Event tokens see their event's jobs, app tokens the jobs they created, admins everything."""
    if client.scope == TokenScope.admin:
        return True
    if client.scope == TokenScope.event:
        return job.event_id is not None and job.event_id == client.event_id
    return job.token_id == client.id


def can_see_purchase(client: ClientToken, purchase: Purchase) -> bool:
    """The same rule as jobs: event tokens see their event's purchases, app tokens their own, admins everything."""
    if client.scope == TokenScope.admin:
        return True
    if client.scope == TokenScope.event:
        return purchase.event_id is not None and purchase.event_id == client.event_id
    return purchase.token_id == client.id


def resolve_owner(client: ClientToken, event_id: int | None, user_id: int | None) -> tuple[int | None, int | None]:
    """Which account pays: a kiosk pays with its event; apps and admins name exactly one of event/user."""
    if client.scope == TokenScope.event:
        if user_id is not None:
            raise Problem(422, "owner_not_allowed", "Invalid request", "An event token cannot charge a user.")
        if event_id is not None and event_id != client.event_id:
            raise forbidden("An event token submits for its own event only.")
        return client.event_id, None
    if (event_id is None) == (user_id is None):
        raise Problem(422, "owner_required", "Invalid request", "Name exactly one of event_id (B2B) or user_id (B2C).")
    return event_id, user_id
