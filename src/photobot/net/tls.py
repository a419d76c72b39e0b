"""The TLS context every outbound client of a process shares.

Building a verifying context loads the whole CA bundle: ~50 ms of CPU on the project's 2-core machine, and httpx
builds a fresh one for every client it is not given one (`httpx.AsyncClient()` 50 ms, with a context 0.2 ms). A
runtime opens three clients, the simulators one each, and the test suite opens thousands; one context per process
serves them all. An `SSLContext` may be shared by any number of connections and threads as long as nobody changes
it after creation, so nothing here hands out a context to be configured: a client that needs other trust (a test CA)
builds its own.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_context() -> ssl.SSLContext:
    """The default verifying context (httpx's: certifi's CA bundle, TLS 1.2+), built once per process."""
    return httpx.create_ssl_context()
