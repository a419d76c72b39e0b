"""The payment side of a process, built once: the Mercado Pago client and the webhook secret, or the simulator.

| `PHOTOBOT_MERCADOPAGO_ACCESS_TOKEN` | `…_BASE_URL` | what runs |
|---|---|---|
| set | any | the real API (or whatever the base URL names) with that token |
| unset | default | a `MercadoPagoSimulator` in this process (`photobot serve`, development) |
| unset | another URL | a standalone simulator there (`photobot mercadopago-simulator`), its test token |
| unset, `PHOTOBOT_ENV=production` | — | payments disabled: `POST /v1/purchases` answers 503 |

Without `PHOTOBOT_MERCADOPAGO_WEBHOOK_SECRET` the simulator signs with a secret derived from
`PHOTOBOT_SECRET_KEY`, so every process of one deployment verifies the same signatures; against the real API an
unset secret refuses every notification (the reconciler still finds the payments).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from photobot.payments.mercadopago import MercadoPagoClient
from photobot.payments.simulator import SIMULATOR_ACCESS_TOKEN, MercadoPagoSimulator
from photobot.runtime import Runtime
from photobot.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.mercadopago.com"


@dataclass
class Payments:
    client: MercadoPagoClient | None  # None: payments are disabled in this process
    webhook_secret: str | None
    simulator_url: str | None = None

    @property
    def enabled(self) -> bool:
        return self.client is not None

    @classmethod
    @asynccontextmanager
    async def open(cls, runtime: Runtime, *, start_simulator: bool = True) -> AsyncIterator[Payments]:
        settings = runtime.settings
        async with AsyncExitStack() as stack:
            secret = webhook_secret(settings)
            if settings.mercadopago_access_token is not None:
                token = settings.mercadopago_access_token.get_secret_value()
                yield cls(MercadoPagoClient(runtime.http, settings.mercadopago_base_url, token), secret)
                return
            if settings.env == "production":
                log.warning("PHOTOBOT_MERCADOPAGO_ACCESS_TOKEN is not set: payments are disabled")
                yield cls(None, secret)
                return
            base = settings.mercadopago_base_url
            if base == DEFAULT_BASE_URL:
                if not start_simulator:
                    yield cls(None, secret)
                    return
                sim = MercadoPagoSimulator(SIMULATOR_ACCESS_TOKEN, secret or "")
                await sim.start()
                stack.push_async_callback(sim.stop)
                base = sim.url
                log.warning("no Mercado Pago access token configured: using the built-in simulator at %s", base)
            client = MercadoPagoClient(runtime.http, base, SIMULATOR_ACCESS_TOKEN)
            yield cls(client, secret, simulator_url=base)


def webhook_secret(settings: Settings) -> str | None:
    """The secret `x-signature` is checked with: the configured one, or (simulator only) one derived from our key."""
    if settings.mercadopago_webhook_secret is not None:
        return settings.mercadopago_webhook_secret.get_secret_value()
    if settings.mercadopago_access_token is not None:
        return None
    key = settings.secret_keys()[0].encode()
    return hmac.new(key, b"photobot.mercadopago.simulator", hashlib.sha256).hexdigest()
