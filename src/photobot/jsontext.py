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
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # every integer Photobot stores is a 32-bit column
# NUL and the other C0/C1 controls (tab and newlines aside) and the bidirectional overrides that make a name
# read differently in a receipt or an e-mail: never stored from a client.
_FORBIDDEN = frozenset(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)))
_FORBIDDEN |= frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


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


def strip_controls(value: str) -> str:
    """`value` without control or bidirectional-override characters (for text written where they would mislead,
    such as a plain-text e-mail, from rows stored before the edge refused them)."""
    return value if _FORBIDDEN.isdisjoint(value) else "".join(c for c in value if c not in _FORBIDDEN)


def check_text(value: str) -> None:
    """JSONRefused when `value` holds a control or bidirectional-override character."""
    if not _FORBIDDEN.isdisjoint(value):
        raise JSONRefused("a text holds a control character")


def _walk(value: Any, limit: int, stored: bool) -> None:
    """Refuse nesting past `limit` levels, without recursion (the value itself may be deep); with `stored`, also
    texts with control characters and integers no 32-bit column holds."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level > limit:
                raise JSONRefused(f"nesting deeper than {limit} levels")
            if isinstance(item, dict):
                if stored:
                    for key in item:
                        check_text(key)
                children: Any = item.values()
            else:
                children = item
            stack.extend((child, level + 1) for child in children)
        elif stored and isinstance(item, str):
            check_text(item)
        elif stored and isinstance(item, int) and not isinstance(item, bool) and not INT_MIN <= item <= INT_MAX:
            raise JSONRefused("an integer is out of range")


def loads(text: bytes | str, *, max_depth: int = MAX_DEPTH, stored: bool = False) -> Any:
    """Parse `text`; JSONRefused when it is not JSON, repeats a key, or nests deeper than `max_depth` — and with
    `stored` (bodies of our own API, whose values may reach the database), when a text holds a control character
    or an integer is out of the 32-bit range."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except JSONRefused:
        raise
    except RecursionError:
        raise JSONRefused(f"nesting deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise JSONRefused("not valid JSON") from None
    _walk(value, max_depth, stored)
    return value
