"""Address classification: what the fetcher refuses to connect to, including IPv6 forms embedding IPv4."""

from __future__ import annotations

import pytest

from photobot.net import AddressPolicy, is_public_address
from photobot.net.addresses import parse_ip

REFUSED = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "172.16.5.4",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "100.64.0.1",  # CGNAT
    "100.127.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "198.18.0.1",
    "::",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # deprecated IPv4-compatible
    "2002:c0a8:0101::1",  # 6to4 embedding 192.168.1.1
    "2002:7f00:0001::1",  # 6to4 embedding 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 embedding 10.0.0.1
    "64:ff9b:1::1",  # local-use NAT64
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "172.32.0.1",  # just outside 172.16/12
    "100.128.0.1",  # just outside CGNAT
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
    "2002:0808:0808::1",  # 6to4 embedding 8.8.8.8
    "64:ff9b::808:808",  # NAT64 embedding 8.8.8.8
]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)
    assert not AddressPolicy().is_allowed(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address)


def test_allow_private_allows_everything() -> None:
    policy = AddressPolicy(allow_private=True)
    assert all(policy.is_allowed(a) for a in REFUSED)


def test_also_allow_opens_exactly_the_listed_network() -> None:
    policy = AddressPolicy.allowing(["127.0.0.1/32"])
    assert policy.is_allowed("127.0.0.1")
    assert not policy.is_allowed("127.0.0.2")
    assert not policy.is_allowed("10.0.0.1")
    assert not policy.is_allowed("169.254.169.254")
    assert not policy.is_allowed("::1")
    assert policy.is_allowed("8.8.8.8")


@pytest.mark.parametrize(
    ("host", "expected"),
    [("[::1]", "::1"), ("10.0.0.1", "10.0.0.1"), ("fe80::1%eth0", "fe80::1"), ("example.com", None)],
)
def test_parse_ip(host: str, expected: str | None) -> None:
    parsed = parse_ip(host)
    assert (str(parsed) if parsed else None) == expected
