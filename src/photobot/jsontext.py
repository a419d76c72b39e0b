"""JSON text from outside, parsed under one policy: no key given twice, no nesting deeper than a limit.

Every body or embedded JSON string that comes from a client or a provider goes through `loads`. The standard
parser keeps the last of two equal keys (so `{"style": "nope", "style": "pb_a"}` would quietly pass a check made
on the first), and raises `RecursionError` — not `ValueError` — on deep nesting, which escaped every `except
ValueError` at the edge as a 500. Here both are a `JSONRefused` (a `ValueError`), with a reason callers can show.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # our own documents nest 4 deep; providers' callbacks 5


class JSONRefused(ValueError):
    """The text is not JSON we accept; `reason` is safe to show to the sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JSONRefused(f"the key {key[:40]!r} is given twice")
        result[key] = value
    return result


def _depth(value: Any, limit: int) -> None:
    """Refuse nesting past `limit` levels, without recursion (the value itself may be deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level > limit:
                raise JSONRefused(f"nesting deeper than {limit} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))


def loads(text: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `text`; JSONRefused when it is not JSON, repeats a key, or nests deeper than `max_depth`."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except JSONRefused:
        raise
    except RecursionError:
        raise JSONRefused(f"nesting deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise JSONRefused("not valid JSON") from None
    _depth(value, max_depth)
    return value
