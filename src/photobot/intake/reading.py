"""Getting image bytes from a base64 `data:` URI onto disk under a byte cap (request bodies are capped by
`web/body.py`).

Decoding stops at the first byte over the cap, and writes to a caller-owned binary file (usually a temp file)
instead of building one big bytes object.
"""

from __future__ import annotations

import base64
import binascii
from typing import IO

from photobot.intake.errors import ImageTooLarge, InvalidDataUri

# Decode the payload in slices of this many base64 characters (a multiple of 4): 64 KiB of output each.
_B64_SLICE = 4 * 16384
_WHITESPACE = str.maketrans("", "", " \t\r\n")


def parse_data_uri_header(uri: str) -> tuple[str, int]:
    """The declared media type and the index where the base64 payload starts.

    Only `data:<type>[;params];base64,` is accepted; the declared type is returned for information only
    (the content type is always detected from the bytes).
    """
    if not uri[:5].lower() == "data:":
        raise InvalidDataUri("Expected a data: URI.")
    comma = uri.find(",", 5, 5 + 256)
    if comma < 0:
        raise InvalidDataUri("The data URI has no ',' after its header.")
    header = uri[5:comma]
    params = [p.strip().lower() for p in header.split(";")]
    if "base64" not in params[1:]:
        raise InvalidDataUri("Only base64 data URIs are accepted.")
    return (params[0] or "text/plain"), comma + 1


def decode_data_uri(uri: str, dest: IO[bytes], max_bytes: int) -> tuple[str, int]:
    """Decode a `data:...;base64,...` URI into `dest`, slice by slice, capping the *decoded* size.

    An oversized payload is refused from its length alone, before decoding anything. Whitespace
    inside the payload is tolerated; missing trailing padding is tolerated; other non-base64 characters are
    not. Returns (declared media type, decoded size).
    """
    declared, start = parse_data_uri_header(uri)
    # Refuse an obviously oversized payload from its length alone (4 characters -> 3 bytes, minus padding).
    characters = len(uri) - start - sum(uri.count(c, start) for c in " \t\r\n")
    if characters // 4 * 3 - 2 > max_bytes:
        raise ImageTooLarge(max_bytes)
    total = 0
    carry = ""
    for offset in range(start, len(uri), _B64_SLICE):
        text = carry + uri[offset : offset + _B64_SLICE].translate(_WHITESPACE)
        usable = len(text) - len(text) % 4
        carry = text[usable:]
        total = _write_decoded(text[:usable], dest, total, max_bytes)
    if carry:
        if len(carry) == 1:
            raise InvalidDataUri("The base64 payload is truncated.")
        total = _write_decoded(carry + "=" * (-len(carry) % 4), dest, total, max_bytes)
    if total == 0:
        raise InvalidDataUri("The data URI is empty.")
    return declared, total


def _write_decoded(text: str, dest: IO[bytes], total: int, max_bytes: int) -> int:
    if not text:
        return total
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDataUri("The data URI payload is not valid base64.") from None
    total += len(data)
    if total > max_bytes:
        raise ImageTooLarge(max_bytes)
    dest.write(data)
    return total
