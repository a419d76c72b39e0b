"""Can the provider read this input URL? Decides between a signed storage URL and the provider's upload API.

The default input is the signed storage URL (no extra transfer). When that URL points at a host the provider
cannot reach (localhost, a private network, a `.local` name: the typical development setup), the adapter
uploads the bytes to the provider's own file storage instead. `allow_private_networks` (development and tests
with the local simulator) treats every URL as reachable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from photobot.net.addresses import is_public_address

_PRIVATE_SUFFIXES = (".local", ".internal", ".localhost", ".lan", ".home.arpa")


def _ip_is_public(address: str) -> bool:
    """The fetcher's own rule (net/addresses.py), so "reachable by the provider" means the same everywhere."""
    try:
        return is_public_address(address.split("%", 1)[0])
    except ValueError:
        return False


async def is_public_url(url: str, *, allow_private_networks: bool = False) -> bool:
    """True when a server on the internet can plausibly fetch `url` (http(s), a public host)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if allow_private_networks:
        return True
    host = parts.hostname.lower()
    if host == "localhost" or host.endswith(_PRIVATE_SUFFIXES):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return _ip_is_public(host)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(_ip_is_public(str(info[4][0])) for info in infos)
