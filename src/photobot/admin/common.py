"""What every operator endpoint shares: admin-token auth, bodies and queries validated into models (through
`web/body.py`, capped while streaming), domain errors as problems and JSON rendering.

Every handler is thin: parse and validate with the models in `admin/schemas.py`, call the same service function
the CLI calls (`photobot.services.*`), render the result. Domain errors map to problems: not found 404,
invalid 422, wrong state 409, no credits 402.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from photobot.db.models import TokenScope
from photobot.jsontext import INT_MAX
from photobot.problems import Problem, not_found
from photobot.runtime import Runtime
from photobot.services import Invalid, NotFound, operations
from photobot.web import context
from photobot.web.auth import require_client
from photobot.web.body import read_json, validate
from photobot.web.openapi import ProblemOut

M = TypeVar("M", bound=BaseModel)
MAX_BODY = 256 * 1024
PREFIX = "/v1/admin"
P = ProblemOut
AUTH_ERRORS: dict[int, Any] = {401: P, 403: P}


async def admin(request: Request) -> Runtime:
    """The runtime, for an admin-scope caller only (401 without a token, 403 for other scopes)."""
    await require_client(request, TokenScope.admin)
    return context.runtime(request)


async def body(request: Request, model: type[M], *, optional: bool = False) -> M:
    data = await read_json(request, MAX_BODY, what="Admin request bodies", empty={} if optional else None)
    return validate(model, data)


def query(request: Request, model: type[M]) -> M:
    return validate(model, dict(request.query_params))


def render(data: Any, status: int = 200) -> Response:
    if isinstance(data, BaseModel):
        out: Any = data.model_dump(mode="json")
    elif isinstance(data, list):
        out = [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in data]
    else:
        out = data
    return JSONResponse(out, status_code=status, headers={"Cache-Control": "no-store"})


async def run(call: Callable[[], Awaitable[Any]]) -> Any:
    """Domain errors → problem details."""
    try:
        return await call()
    except NotFound as exc:
        raise not_found(str(exc)) from None
    except operations.NoCreditsLeft as exc:
        raise Problem(402, "no_credits", "No credits left", str(exc)) from None
    except operations.WrongState as exc:
        raise Problem(409, "wrong_state", "Conflict", str(exc)) from None
    except operations.GuestLimitReached as exc:
        raise Problem(409, "guest_limit_reached", "Photo limit reached", str(exc)) from None
    except Invalid as exc:
        raise Problem(422, "invalid", "Invalid request", str(exc)) from None


def int_param(request: Request, name: str) -> int:
    """An id from the path; one no 32-bit column can hold names nothing (404), not a database error."""
    value = int(request.path_params[name])
    if not 0 <= value <= INT_MAX:
        raise not_found()
    return value
