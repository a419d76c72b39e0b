"""URL rules checked before every hop: scheme, host, no credentials, optional host allowlist.

Addresses are not checked here (see `addresses` and `backend`): an IP literal is judged by the same code that
judges a resolved name, at connect time, so there is exactly one place that decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from photobot.net.errors import UrlNotAllowed, redact_url

DEFAULT_PORTS = {"http": 80, "https": 443}


def _normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class HostAllowlist:
    """Hosts a fetch may reach. Entries: `host` (the scheme's default port), `host:port`, `[v6]:port`,
    or `*.domain` (any subdomain of domain, default port). Names compare case-insensitively."""

    entries: frozenset[tuple[str, int | None]]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> HostAllowlist:
        parsed: set[tuple[str, int | None]] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            port: int | None = None
            if entry.startswith("["):
                host, _, rest = entry[1:].partition("]")
                if rest.startswith(":"):
                    port = int(rest[1:])
            elif entry.count(":") == 1:
                host, _, port_text = entry.partition(":")
                port = int(port_text)
            else:
                host = entry
            parsed.add((_normalize_host(host), port))
        return cls(frozenset(parsed))

    def allows(self, url: httpx.URL) -> bool:
        host = _normalize_host(url.host)
        port = url.port or DEFAULT_PORTS.get(url.scheme)
        for pattern, pattern_port in self.entries:
            wanted_port = pattern_port if pattern_port is not None else DEFAULT_PORTS.get(url.scheme)
            if port != wanted_port:
                continue
            if pattern == host:
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        return False


def check_url(url: httpx.URL, *, allow_http: bool, allowlist: HostAllowlist | None) -> None:
    """Raise UrlNotAllowed unless `url` may be requested at all (before any address is looked at)."""
    schemes = ("http", "https") if allow_http else ("https",)
    if url.scheme not in schemes:
        raise UrlNotAllowed(f"scheme {url.scheme or '(none)'!r} is not allowed: {redact_url(url)}")
    if not url.host:
        raise UrlNotAllowed("URL has no host")
    if url.userinfo:
        raise UrlNotAllowed(f"credentials in the URL are not allowed: {redact_url(url)}")
    if allowlist is not None and not allowlist.allows(url):
        raise UrlNotAllowed(f"host is not in the allowlist: {redact_url(url)}")


def parse_url(url: str | httpx.URL) -> httpx.URL:
    """`url` as an httpx.URL, or UrlNotAllowed (with no echo of the raw value) when it does not parse."""
    if isinstance(url, httpx.URL):
        return url
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UrlNotAllowed("invalid URL") from None
    if not parsed.is_absolute_url:
        raise UrlNotAllowed("URL must be absolute")
    return parsed
