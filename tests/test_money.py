"""Payment terms and USDC units: validated values, exact conversions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockbankr.errors import ConfigError
from mockbankr.money import (
    DEFAULT_PAY_TO,
    USDC_BASE,
    PaymentTerms,
    atomic_to_usdc,
    usdc_to_atomic,
)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"price_atomic": -1}, "price_atomic"),
        ({"price_atomic": 2**256}, "uint256"),
        ({"pay_to": "0x1234"}, "pay_to"),
        ({"pay_to": "0x000000000000000000000000000000000000DeaD"}, "checksum"),
        ({"asset": "USDC"}, "asset"),
        ({"network": "ethereum"}, "network"),
        ({"max_timeout_seconds": 0}, "max_timeout_seconds"),
    ],
)
def test_payment_terms_refuse_bad_values(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PaymentTerms(**kwargs)


def test_payment_terms_checksum_their_addresses() -> None:
    terms = PaymentTerms(pay_to=DEFAULT_PAY_TO.lower(), asset=USDC_BASE.upper().replace("0X", "0x"))
    assert (terms.pay_to, terms.asset) == (DEFAULT_PAY_TO, USDC_BASE)
    assert isinstance(ConfigError("x"), ValueError)


@pytest.mark.parametrize(
    ("usdc", "atomic", "text"),
    [
        ("0.10", 100_000, "0.1"),
        ("0", 0, "0"),
        ("1", 1_000_000, "1"),
        ("0.000001", 1, "0.000001"),
        ("12.5", 12_500_000, "12.5"),
        ("1e2", 100_000_000, "100"),
        ("1234567.654321", 1_234_567_654_321, "1234567.654321"),
    ],
)
def test_usdc_conversions(usdc: str, atomic: int, text: str) -> None:
    assert usdc_to_atomic(usdc) == atomic
    assert atomic_to_usdc(atomic) == text


@pytest.mark.parametrize(
    "bad",
    ["0.0000001", "-0.1", "NaN", "Infinity", "ten", "", "1e999999999", str(2**256 // 10**6 + 1)],
)
def test_usdc_to_atomic_refuses_bad_amounts(bad: str) -> None:
    with pytest.raises(ConfigError):
        usdc_to_atomic(bad)


@given(st.integers(min_value=0, max_value=2**256 - 1))
def test_atomic_usdc_round_trip(atomic: int) -> None:
    assert usdc_to_atomic(atomic_to_usdc(atomic)) == atomic
