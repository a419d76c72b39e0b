"""Credit packs on sale, shared by `photobot packs …` and `/v1/admin/packs` (one implementation).

Prices are given as decimal text (`9.90`), stored as integer cents and shown as `"9.90"`: no float ever holds
money. A pack is disabled, never deleted: purchases keep pointing at it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.db.models import Pack, Purchase
from photobot.payments.mercadopago import format_cents
from photobot.services import Invalid, NotFound

CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_PRICE_CENTS = 100_000_000  # 1,000,000.00: a typo guard


def parse_price(text: str | int | float | Decimal) -> int:
    """`"9.90"` → 990; refuses more than two decimals, zero, negatives and absurd values."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise Invalid("price must be a number such as 9.90") from None
    if not value.is_finite() or value <= 0:
        raise Invalid("price must be more than 0")
    if value > Decimal(MAX_PRICE_CENTS) / 100:  # compared before multiplying: 1e999999 must not overflow
        raise Invalid("price is too large")
    cents = value * 100
    if cents != cents.to_integral_value():
        raise Invalid("price has at most two decimals")
    if cents > MAX_PRICE_CENTS:
        raise Invalid("price is too large")
    return int(cents)


def pack_view(pack: Pack) -> dict[str, Any]:
    return {"id": pack.id, "name": pack.name, "credits": pack.credits, "price": format_cents(pack.price_cents),
            "currency": pack.currency, "active": pack.active}  # fmt: skip


def purchase_view(purchase: Purchase) -> dict[str, Any]:
    """A purchase as clients, operators and the CLI see it (nothing secret is on the row)."""
    return {
        "id": purchase.id, "status": purchase.status, "checkout_url": purchase.checkout_url,
        "credits": purchase.credits, "price": format_cents(purchase.price_cents), "currency": purchase.currency,
        "created_at": purchase.created_at.isoformat(), "updated_at": purchase.updated_at.isoformat(),
        "pack_id": purchase.pack_id, "event_id": purchase.event_id, "user_id": purchase.user_id,
        "payment_id": purchase.payment_id,
        "approved_at": purchase.approved_at.isoformat() if purchase.approved_at else None,
        "reversed_credits": purchase.reversed_credits, "shortfall": purchase.shortfall,
        "error_code": purchase.error_code,
    }  # fmt: skip


async def create_pack(session: AsyncSession, name: str, credits: int, price: str, currency: str) -> Pack:
    if not name.strip() or len(name.strip()) > 200:
        raise Invalid("name must be 1 to 200 characters")
    if credits < 1 or credits > 1_000_000:
        raise Invalid("credits must be 1 to 1000000")
    currency = currency.strip().upper()
    if not CURRENCY.match(currency):
        raise Invalid("currency must be a three-letter ISO 4217 code such as BRL")
    pack = Pack(name=name.strip(), credits=credits, price_cents=parse_price(price), currency=currency)
    session.add(pack)
    await session.flush()
    return pack


async def list_packs(session: AsyncSession, *, active_only: bool = False) -> list[Pack]:
    query = sa.select(Pack).order_by(col(Pack.id))
    if active_only:
        query = query.where(col(Pack.active).is_(True))
    return list((await session.execute(query)).scalars())


async def disable_pack(session: AsyncSession, pack_id: int) -> Pack:
    pack = await session.get(Pack, pack_id)
    if pack is None:
        raise NotFound(f"pack {pack_id} not found")
    pack.active = False
    await session.flush()
    return pack
