"""Mercado Pago's REST API, the three calls we make: create a Checkout Pro preference, read a payment, search
payments by `external_reference`. Whatever a notification says, these answers are the only truth we act on.

Amounts cross this boundary as integer cents (`to_cents`), never floats, so "9.90 BRL" compares exactly.
The access token goes in the `Authorization` header only; errors name the call and the HTTP status, never it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import httpx

MAX_AMOUNT = Decimal(10**12)


class MercadoPagoError(Exception):
    """A call failed (network, 5xx, unexpected shape); the message never contains the token."""


def to_cents(value: Any) -> int | None:
    """`9.9`, `"9.90"`, `Decimal("9.9")` → 990; anything not a finite number → None."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
        return None  # no payment is that large; a huge exponent would not even quantize
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_cents(cents: int) -> str:
    """990 → `"9.90"`: how prices are shown and sent (as a number) to Mercado Pago."""
    return f"{Decimal(cents) / 100:.2f}"


@dataclass(frozen=True, slots=True)
class Payment:
    """What we read from `GET /v1/payments/{id}`."""

    id: str
    # pending | approved | authorized | in_process | in_mediation | rejected | cancelled | refunded | charged_back
    status: str
    status_detail: str | None
    amount_cents: int | None
    currency: str | None
    external_reference: str | None

    @classmethod
    def parse(cls, data: Any) -> Payment:
        if not isinstance(data, dict) or "id" not in data or not isinstance(data.get("status"), str):
            raise MercadoPagoError("payment: unexpected response shape")
        ref = data.get("external_reference")
        return cls(
            id=str(data["id"]),
            status=data["status"],
            status_detail=data.get("status_detail") if isinstance(data.get("status_detail"), str) else None,
            amount_cents=to_cents(data.get("transaction_amount")),
            currency=data.get("currency_id") if isinstance(data.get("currency_id"), str) else None,
            external_reference=ref if isinstance(ref, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Preference:
    id: str
    init_point: str


@dataclass(frozen=True, slots=True)
class PreferenceRequest:
    title: str
    price_cents: int
    currency: str
    external_reference: str
    notification_url: str
    back_url: str  # the result page; Mercado Pago appends the payment's status to it
    expires_at: str | None = None  # ISO 8601; the checkout stops accepting payments after it

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "items": [
                {
                    "id": self.external_reference,
                    "title": self.title,
                    "quantity": 1,
                    "unit_price": float(format_cents(self.price_cents)),
                    "currency_id": self.currency,
                }
            ],
            "external_reference": self.external_reference,
            "notification_url": self.notification_url,
            "back_urls": {"success": self.back_url, "failure": self.back_url, "pending": self.back_url},
            "auto_return": "approved",
        }
        if self.expires_at:
            body["expires"] = True
            body["expiration_date_to"] = self.expires_at
        return body


class MercadoPagoClient:
    """Thin async client; `base_url` is https://api.mercadopago.com or a simulator."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, access_token: str, *, timeout_s: float = 10.0) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._timeout = timeout_s

    async def _call(
        self, what: str, method: str, path: str, *, extra_headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {**self._headers, **(extra_headers or {})}
        try:
            response = await self._http.request(
                method, self.base_url + path, headers=headers, timeout=self._timeout, **kwargs
            )
        except httpx.HTTPError as exc:
            raise MercadoPagoError(f"{what}: {type(exc).__name__}") from None
        return response

    async def create_preference(self, request: PreferenceRequest, *, idempotency_key: str) -> Preference:
        response = await self._call(
            "create preference", "POST", "/checkout/preferences", json=request.body(),
            extra_headers={"X-Idempotency-Key": idempotency_key},
        )  # fmt: skip
        if response.status_code not in (200, 201):
            raise MercadoPagoError(f"create preference: HTTP {response.status_code}")
        data = _json(response, "create preference")
        if not isinstance(data.get("id"), str) or not isinstance(data.get("init_point"), str):
            raise MercadoPagoError("create preference: unexpected response shape")
        return Preference(id=data["id"], init_point=data["init_point"])

    async def get_payment(self, payment_id: str) -> Payment | None:
        """The payment, or None when Mercado Pago does not know it (404: a forged or foreign id)."""
        if not payment_id.isdigit() or len(payment_id) > 30:
            return None  # payment ids are numbers: anything else is not worth a request
        response = await self._call("get payment", "GET", f"/v1/payments/{payment_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise MercadoPagoError(f"get payment: HTTP {response.status_code}")
        return Payment.parse(_json(response, "get payment"))

    async def search_payments(self, external_reference: str) -> list[Payment]:
        params = {"external_reference": external_reference, "sort": "date_created", "criteria": "desc"}
        response = await self._call("search payments", "GET", "/v1/payments/search", params=params)
        if response.status_code != 200:
            raise MercadoPagoError(f"search payments: HTTP {response.status_code}")
        results = _json(response, "search payments").get("results")
        if not isinstance(results, list):
            raise MercadoPagoError("search payments: unexpected response shape")
        return [Payment.parse(item) for item in results]

    def __repr__(self) -> str:  # never show the headers
        return f"MercadoPagoClient({self.base_url!r})"


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise MercadoPagoError(f"{what}: not JSON") from None
    if not isinstance(data, dict):
        raise MercadoPagoError(f"{what}: unexpected response shape")
    return data
