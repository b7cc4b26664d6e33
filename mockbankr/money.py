"""Money: what ``/v2/prompt`` charges (:class:`PaymentTerms`) and USDC units.

Pure values and conversions, with no signatures and no HTTP: the ledger and the
settings need these, and nothing of how a payment is verified
(:mod:`mockbankr.x402`) or how a job request is signed (:mod:`mockbankr.job_auth`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

from mockbankr.errors import ConfigError

__all__ = [
    "DEFAULT_PAY_TO",
    "NETWORK_CHAIN_IDS",
    "PaymentTerms",
    "UINT256_LIMIT",
    "USDC_BASE",
    "USDC_DECIMALS",
    "atomic_to_usdc",
    "usdc_to_atomic",
]

USDC_BASE: Final = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
"""USDC on Base mainnet (checksummed, as x402-fetch string-compares it)."""
USDC_DECIMALS: Final = 6
NETWORK_CHAIN_IDS: Final[Mapping[str, int]] = MappingProxyType(
    {"base": 8453, "base-sepolia": 84532}
)
"""x402 v1 network names this mock can take payment on, with their EIP-155 chain ids."""
DEFAULT_PAY_TO: Final = "0x000000000000000000000000000000000000dEaD"
"""The well-known burn address: obviously not a real merchant, and nothing is ever settled."""
UINT256_LIMIT: Final = 2**256
"""One past the largest amount a ``uint256`` (an ERC-20 transfer value) can hold."""

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _checksummed(value: str, what: str) -> str:
    if not isinstance(value, str) or not _HEX_ADDRESS.fullmatch(value):
        raise ConfigError(f"{what} must be a 0x-prefixed 20-byte hex address, got {value!r}")
    # Imported here: eth_utils takes about 0.5 s to import (pydantic), which
    # `import mockbankr.money` (the ledger, the settings) should not pay.
    from eth_utils.address import to_checksum_address

    checksummed: str = to_checksum_address(value)
    body = value[2:]
    if body != body.lower() and body != body.upper() and value != checksummed:
        raise ConfigError(
            f"{what} has a wrong EIP-55 checksum: {value!r} (did you mean {checksummed}?)"
        )
    return checksummed


@dataclass(frozen=True)
class PaymentTerms:
    """What ``/v2/prompt`` charges, and where the (never settled) money would go.

    Addresses are normalised to their EIP-55 checksummed form; a mixed-case
    address with a wrong checksum, a negative price, an unknown network or a
    non-positive timeout raises :class:`~mockbankr.errors.ConfigError`.
    ``token_name``/``token_version`` are the asset's EIP-712 domain, sent as
    ``extra`` (Base USDC: ``"USD Coin"``/``"2"``; Base Sepolia USDC is ``"USDC"``).

    Example::

        terms = PaymentTerms(price_atomic=usdc_to_atomic("0.25"))
    """

    price_atomic: int = 100_000
    pay_to: str = DEFAULT_PAY_TO
    asset: str = USDC_BASE
    network: str = "base"
    max_timeout_seconds: int = 60
    description: str = "Bankr agent prompt (mockbankr: simulated payment, never settled)"
    mime_type: str = "application/json"
    token_name: str = "USD Coin"
    token_version: str = "2"

    def __post_init__(self) -> None:
        if type(self.price_atomic) is not int or self.price_atomic < 0:
            raise ConfigError(f"price_atomic must be an int >= 0, got {self.price_atomic!r}")
        if self.price_atomic >= UINT256_LIMIT:
            raise ConfigError("price_atomic does not fit in a uint256")
        if self.network not in NETWORK_CHAIN_IDS:
            raise ConfigError(
                f"network must be one of {sorted(NETWORK_CHAIN_IDS)}, got {self.network!r}"
            )
        if type(self.max_timeout_seconds) is not int or self.max_timeout_seconds <= 0:
            raise ConfigError(
                f"max_timeout_seconds must be an int > 0, got {self.max_timeout_seconds!r}"
            )
        object.__setattr__(self, "pay_to", _checksummed(self.pay_to, "pay_to"))
        object.__setattr__(self, "asset", _checksummed(self.asset, "asset"))


def usdc_to_atomic(amount: Decimal | str) -> int:
    """Convert a USDC amount to atomic units (6 decimals), refusing sub-atomic precision.

    Example::

        usdc_to_atomic("0.10")  # 100000
    """
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise ConfigError(f"not a decimal USDC amount: {amount!r}") from None
    if not value.is_finite() or value < 0 or value.adjusted() > 80:
        raise ConfigError(f"a USDC amount must be finite, >= 0 and fit a uint256: {amount!r}")
    # Exact: scaleb only moves the exponent, so the coefficient's digits always fit.
    atomic = value.scaleb(USDC_DECIMALS, Context(prec=len(value.as_tuple().digits) + 1))
    if atomic != atomic.to_integral_value():
        raise ConfigError(f"{amount!r} has more than {USDC_DECIMALS} decimal places")
    if atomic >= UINT256_LIMIT:
        raise ConfigError(f"a USDC amount must be finite, >= 0 and fit a uint256: {amount!r}")
    return int(atomic)


def atomic_to_usdc(atomic: int) -> str:
    """Format atomic units as the shortest exact decimal USDC string, never in exponent form.

    Example::

        [atomic_to_usdc(n) for n in (100000, 1, 2 * 10**6)]  # ["0.1", "0.000001", "2"]
    """
    if type(atomic) is not int or atomic < 0:
        raise ValueError(f"atomic units must be an int >= 0, got {atomic!r}")
    whole, frac = divmod(atomic, 10**USDC_DECIMALS)
    if not frac:
        return str(whole)
    return f"{whole}.{frac:0{USDC_DECIMALS}d}".rstrip("0")
