"""Money never passes through a float: prices round-trip through cents exactly; hostile price text is refused."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from photobot.payments.mercadopago import format_cents, to_cents
from photobot.payments.packs import MAX_PRICE_CENTS, parse_price
from photobot.services import Invalid


@given(st.integers(min_value=1, max_value=MAX_PRICE_CENTS))
def test_cents_round_trip(cents: int) -> None:
    text = format_cents(cents)
    assert parse_price(text) == cents
    assert to_cents(text) == cents
    assert to_cents(float(text)) == cents  # what Mercado Pago's JSON number becomes


@given(st.text(max_size=40))
def test_hostile_price_text_is_refused_or_exact(text: str) -> None:
    try:
        cents = parse_price(text)
    except Invalid:
        return
    assert 1 <= cents <= MAX_PRICE_CENTS
    assert Decimal(text.strip()) * 100 == cents


@given(st.one_of(st.none(), st.text(max_size=20), st.floats(allow_nan=True), st.booleans(), st.lists(st.integers())))
def test_to_cents_never_raises(value: object) -> None:
    result = to_cents(value)
    assert result is None or isinstance(result, int)


def test_extreme_exponents_are_refused_not_crashing() -> None:
    for text in ("1e999999", "1E-999999", "0.001", "NaN", "Infinity", "-0", ""):
        try:
            parse_price(text)
        except Invalid:
            continue
        raise AssertionError(text)
    assert parse_price("9.9e1") == 9900
    assert to_cents("1e999999") is None and to_cents("1e-999999") == 0
