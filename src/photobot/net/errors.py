"""Typed fetch errors: each has a stable `code` that callers branch on and map to their own responses.

Messages are built from redacted URLs only (scheme, host, port and path; never the query string or userinfo),
because result and input URLs often carry signatures that must not end up in logs or job errors.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from photobot.problems import Problem


class FetchError(Exception):
    """Base class: the fetch was refused or failed; `code` is stable, `str(exc)` is safe to log."""

    code = "fetch_failed"
    # What an API answering for a client-supplied URL replies: 422 (413 for TooLarge). Not 502/504: a
    # guest's dead or slow URL is the client's problem and must not count as an outage of ours.
    status = 422
    title = "Could not fetch the URL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_problem(self) -> Problem:
        """The problem-details error for when the URL came from an API client."""
        return Problem(self.status, self.code, self.title, self.message)


class UrlNotAllowed(FetchError):
    """The URL itself is refused: scheme, missing host, credentials in the URL, or not in the allowlist."""

    code = "url_not_allowed"
    title = "URL not allowed"


class AddressNotAllowed(FetchError):
    """The host is (or resolves to) an address we never connect to: private, loopback, link-local, ..."""

    code = "address_not_allowed"
    title = "Address not allowed"


class TooLarge(FetchError):
    """The body is bigger than the cap (announced by Content-Length or found while streaming)."""

    code = "too_large"
    status = 413
    title = "Content too large"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class FetchTimeout(FetchError):
    """Connecting, reading, or the whole fetch took longer than allowed."""

    code = "fetch_timeout"
    title = "Fetch timed out"


class FetchFailed(FetchError):
    """Network error, TLS error, too many redirects, or a non-2xx HTTP status (`status_code` is then set)."""

    code = "fetch_failed"
    title = "Fetch failed"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def redact_url(url: object) -> str:
    """`scheme://host[:port]/path` of a URL: no userinfo, query or fragment (they may hold secrets)."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid url>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    redacted = f"{parts.scheme}://{netloc}{parts.path}"
    return redacted if len(redacted) <= 200 else redacted[:200] + "..."
