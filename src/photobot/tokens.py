"""Client tokens (kiosks, apps, admins): random bearer secrets stored only as SHA-256 hashes.

A token reads `pbt_<43 url-safe chars>`; the prefix makes leaked tokens easy to spot and to redact in logs.
Lookup hashes the presented value, so the database never holds a usable credential.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "pbt_"  # noqa: S105 - a public prefix, not a secret


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
