"""Operations on the service's records, shared by the CLI and the admin HTTP API (one implementation).

Each function takes an open `AsyncSession` (the caller owns the transaction) and returns model objects;
`public_view(...)` turns them into JSON-safe dicts without secrets.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import SQLModel

from photobot.db.models import ClientToken, Job, ProviderKey


class NotFound(LookupError):
    """The record named by the caller does not exist."""


class Invalid(ValueError):
    """The caller's input is not acceptable; the message says why in one line."""


def public_view(obj: SQLModel) -> dict[str, Any]:
    """A JSON-safe dict of a record, with secrets removed or masked."""
    if isinstance(obj, ProviderKey):
        data = obj.model_dump(mode="json", exclude={"secret"})
        data["secret"] = obj.masked
        return data
    if isinstance(obj, ClientToken):
        return obj.model_dump(mode="json", exclude={"token_hash"})
    if isinstance(obj, Job):
        return obj.model_dump(mode="json", exclude={"request_hash"})
    return obj.model_dump(mode="json")
