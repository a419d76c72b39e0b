"""Outbound HTTP to URLs we do not control (downloads, webhook POSTs), safe against SSRF: see `fetcher.SafeFetcher`."""

from photobot.net.addresses import AddressPolicy, is_public_address
from photobot.net.backend import PinnedBackend, Resolver, system_resolver
from photobot.net.errors import (
    AddressNotAllowed,
    FetchError,
    FetchFailed,
    FetchTimeout,
    TooLarge,
    UrlNotAllowed,
    redact_url,
)
from photobot.net.fetcher import FetchResponse, FetchResult, PostResult, SafeFetcher
from photobot.net.urls import HostAllowlist

__all__ = [
    "AddressNotAllowed",
    "AddressPolicy",
    "FetchError",
    "FetchFailed",
    "FetchResponse",
    "FetchResult",
    "FetchTimeout",
    "HostAllowlist",
    "PinnedBackend",
    "PostResult",
    "Resolver",
    "SafeFetcher",
    "TooLarge",
    "UrlNotAllowed",
    "is_public_address",
    "redact_url",
    "system_resolver",
]
