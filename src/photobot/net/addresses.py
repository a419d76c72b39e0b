"""Which IP addresses the fetcher may connect to.

`ipaddress.is_global` does most of the work but is not enough on its own: it calls 6to4 (2002::/16) and NAT64
(64:ff9b::/96) addresses global even when they embed 10.0.0.1, and it knows nothing about what an attacker can
do with an IPv4-mapped address. So the embedded IPv4 address is judged wherever one exists, and a short list of
networks is refused explicitly on top of `is_global` (belt and braces against a Python that classifies
differently).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_BLOCKED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        # IPv4
        "0.0.0.0/8",  # "this network", includes the unspecified address
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, incl. the cloud metadata address 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast
        # IPv6
        "::/128",
        "::1/128",
        "::/96",  # deprecated IPv4-compatible addresses
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public_address(address: IPAddress | str) -> bool:
    """True when `address` is a globally routable unicast address, judging any embedded IPv4 address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public_address(embedded)
    if any(ip in net for net in _BLOCKED_NETWORKS if net.version == ip.version):
        return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64, Teredo client), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]  # the client address; the whole 2001::/32 prefix is not global anyway
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Decides whether a connection to an address is allowed.

    `allow_private=True` (development, tests, `PHOTOBOT_ALLOW_PRIVATE_NETWORKS`) allows everything.
    `also_allow` lets a test allow exactly one loopback address (say 127.0.0.1/32) while every other
    private, link-local or metadata address stays refused, so SSRF refusals can be tested over real sockets.
    """

    allow_private: bool = False
    also_allow: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def allowing(cls, networks: Iterable[str]) -> AddressPolicy:
        return cls(also_allow=tuple(ipaddress.ip_network(n) for n in networks))

    def is_allowed(self, address: IPAddress | str) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if self.allow_private:
            return True
        if any(ip.version == net.version and ip in net for net in self.also_allow):
            return True
        return is_public_address(ip)


def parse_ip(host: str) -> IPAddress | None:
    """The address when `host` is an IP literal (brackets and IPv6 zone ids tolerated), else None."""
    literal = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(literal)
    except ValueError:
        return None
