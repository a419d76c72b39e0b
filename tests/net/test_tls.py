"""One verifying TLS context per process, shared by every outbound client (src/photobot/net/tls.py)."""

from __future__ import annotations

import ssl
from collections.abc import Callable

from photobot.net.tls import client_context
from photobot.runtime import Runtime
from photobot.settings import Settings


def test_the_shared_context_verifies_certificates_and_host_names() -> None:
    context = client_context()
    assert context is client_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded


async def test_every_runtime_of_a_process_uses_it(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    for _ in range(2):
        async with Runtime.open(settings) as runtime:
            assert runtime.ssl_context is client_context()
