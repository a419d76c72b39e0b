"""RFC 9457 problem details: every error the API returns, with a stable machine-readable `code`.

Handlers raise `Problem`; the exception handler installed by `create_app` renders it as
`application/problem+json`. The `code` is the contract clients branch on; `title` and `detail` are for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

PROBLEM_TYPE_BASE = "https://photobot.dev/problems/"


class Problem(Exception):
    """An error with an HTTP status and a stable code; safe to show to the client as is."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail or title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    # starlette is imported here, not at the top: the image processes import the intake errors (Problems) and
    # nothing of the web stack, which would cost each of them ~15 MB (docs/design-notes.md)
    from starlette.responses import JSONResponse

    return JSONResponse(
        problem.to_dict(instance), status_code=problem.status, headers=problem.headers,
        media_type="application/problem+json",
    )  # fmt: skip


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc, instance=request.url.path)


# Shorthands for the problems most routes raise.
def unauthorized(detail: str = "Missing or invalid credentials.") -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str = "Not allowed.") -> Problem:
    return Problem(403, "forbidden", "Forbidden", detail)


def not_found(detail: str = "Not found.") -> Problem:
    return Problem(404, "not_found", "Not found", detail)


def validation_error(detail: str, errors: list[dict[str, Any]] | None = None) -> Problem:
    extra = {"errors": errors} if errors else None
    return Problem(422, "validation_error", "Invalid request", detail, extra=extra)
