"""The rules of a webhook endpoint: which URLs are acceptable, which message types it may hear, which secrets sign.

URLs follow the SSRF-safe fetcher's rules (`photobot.net`): https only and no credentials in the URL, and an IP
literal (or `localhost`) must be a public address, unless `PHOTOBOT_ALLOW_PRIVATE_NETWORKS` is on. A name is
judged again at every send, on the addresses it resolves to then (`SafeFetcher.post`), so a name that later
points inside the network is refused at that moment, not only when it was added.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from photobot.db.models import WebhookEndpoint
from photobot.net.addresses import AddressPolicy, parse_ip
from photobot.net.errors import AddressNotAllowed, UrlNotAllowed, redact_url
from photobot.net.urls import check_url, parse_url
from photobot.outbound.outbox import EVENT_TYPES

MAX_URL_LENGTH = 2000


class TypesRefused(ValueError):
    """A message type that does not exist was asked for; the message lists the ones that do."""


def check_endpoint_url(url: str, *, allow_private: bool) -> str:
    """The URL, stripped, when an endpoint may have it; otherwise `UrlNotAllowed` or `AddressNotAllowed`."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise UrlNotAllowed(f"URL is longer than {MAX_URL_LENGTH} characters")
    parsed = parse_url(url)
    check_url(parsed, allow_http=allow_private, allowlist=None)
    if not allow_private:
        host = parsed.host.lower().rstrip(".")
        literal = parse_ip(host)
        local_name = host == "localhost" or host.endswith(".localhost")
        if local_name or (literal is not None and not AddressPolicy().is_allowed(literal)):
            raise AddressNotAllowed(
                f"{redact_url(url)} is not a public address (PHOTOBOT_ALLOW_PRIVATE_NETWORKS is off)"
            )
    return url


def parse_types(types: Iterable[str] | str | None) -> list[str]:
    """The message types asked for (comma-separated text or a list), in the documented order; all when none."""
    if types is None:
        return list(EVENT_TYPES)
    items = [t.strip() for t in (types.split(",") if isinstance(types, str) else types) if t.strip()]
    if not items:
        return list(EVENT_TYPES)
    unknown = sorted(set(items) - set(EVENT_TYPES))
    if unknown:
        raise TypesRefused(f"unknown message types {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
    return [t for t in EVENT_TYPES if t in items]


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a message now: the current one, and the previous one during a rotation's overlap."""
    secrets = [endpoint.secret]
    if endpoint.old_secret and endpoint.old_secret_until is not None and endpoint.old_secret_until > now:
        secrets.append(endpoint.old_secret)
    return secrets
