"""The server side of x402 v1 for ``POST /v2/prompt``, and EIP-191 job auth for ``/v2/job/*``.

Pure logic: no I/O, no clock, no randomness. Time arrives as ``now`` (simulated
unix seconds). Payments are verified by recovering the EIP-712
``TransferWithAuthorization`` signer locally with eth-account; nothing is ever
settled. Nonce reuse is *not* checked here (the store does that atomically), but
its reason string, :attr:`PaymentReason.NONCE_REUSED`, lives here with the others.

Reason strings are the facilitator's vocabulary. Each one is a member of the
Coinbase CDP facilitator's ``X402VerifyInvalidReason`` enum, and all but
``invalid_exact_evm_nonce_already_used`` are also in npm ``x402@1.2.0``
``ErrorReasons`` (the package ``@bankr/sdk`` pulls in). An expired
authorization is ``..._authorization_valid_before``, as in x402 1.2.0's EVM
``verify``; ``payment_expired`` is in neither facilitator's EVM path.

Checks run cheapest first, so a payment with several faults reports the first
of: header size and base64, JSON shape (``invalid_payload``), ``x402Version``,
scheme, network, field formats, recipient, expiry, not-yet-valid, amount, and
last the signature recovery, which costs far more than everything else.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal

import msgspec
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from mockbankr.errors import ConfigError, JobAuthError, PaymentRejected

__all__ = [
    "DEFAULT_PAY_TO",
    "JobAuthError",
    "JobAuthReason",
    "MAX_HEADER_CHARS",
    "NETWORK_CHAIN_IDS",
    "PaymentReason",
    "PaymentRejected",
    "PaymentTerms",
    "USDC_BASE",
    "USDC_DECIMALS",
    "VerifiedPayment",
    "atomic_to_usdc",
    "challenge_body",
    "payment_response_header",
    "transaction_hash",
    "usdc_to_atomic",
    "verify_job_signature",
    "verify_payment",
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
MAX_HEADER_CHARS: Final = 8192
"""Longer X-PAYMENT headers are refused unread (a real one is about 600 characters)."""


class PaymentReason(StrEnum):
    """Why a payment was refused: facilitator reason strings (members compare equal to them).

    Example::

        PaymentReason.EXPIRED == "invalid_exact_evm_payload_authorization_valid_before"
    """

    INVALID_PAYLOAD = "invalid_payload"  # not base64, not JSON, or a field missing/mistyped
    INVALID_X402_VERSION = "invalid_x402_version"  # x402Version is not 1
    INVALID_SCHEME = "invalid_scheme"  # scheme is not "exact"
    INVALID_NETWORK = "invalid_network"  # network differs from the terms' network
    INVALID_SIGNATURE = "invalid_exact_evm_payload_signature"  # does not recover to `from`
    RECIPIENT_MISMATCH = "invalid_exact_evm_payload_recipient_mismatch"  # to != payTo
    EXPIRED = "invalid_exact_evm_payload_authorization_valid_before"  # now >= validBefore
    NOT_YET_VALID = "invalid_exact_evm_payload_authorization_valid_after"  # validAfter > now
    UNDERPAID = "invalid_exact_evm_payload_authorization_value"  # value < maxAmountRequired
    NONCE_REUSED = "invalid_exact_evm_nonce_already_used"  # checked by the store, not here


class JobAuthReason(StrEnum):
    """Why the signed headers of a ``/v2/job/*`` request were refused.

    Example::

        JobAuthReason.SIGNER_MISMATCH == "signer_mismatch"
    """

    MISSING_WALLET_ADDRESS = "missing_wallet_address"  # no wallet-address header
    MISSING_SIGNATURE = "missing_signature"  # no x-signature header
    MISSING_MESSAGE = "missing_message"  # no x-message header
    INVALID_WALLET_ADDRESS = "invalid_wallet_address"  # not 0x + 40 hex
    MESSAGE_MISMATCH = "message_mismatch"  # not exactly the text for this job and action
    INVALID_SIGNATURE = "invalid_signature"  # not 0x + 130 hex, or not a valid signature
    SIGNER_MISMATCH = "signer_mismatch"  # signed by a wallet other than wallet-address


_SCHEME: Final = "exact"
_UINT256_LIMIT: Final = 2**256
_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX_SIGNATURE_65 = re.compile(r"0x[0-9a-fA-F]{130}")
_ABSOLUTE_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?")
_TRANSFER_TYPES: Final = {
    name: [{"name": n, "type": t} for n, t in fields]
    for name, fields in {
        "EIP712Domain": [
            ("name", "string"),
            ("version", "string"),
            ("chainId", "uint256"),
            ("verifyingContract", "address"),
        ],
        "TransferWithAuthorization": [
            ("from", "address"),
            ("to", "address"),
            ("value", "uint256"),
            ("validAfter", "uint256"),
            ("validBefore", "uint256"),
            ("nonce", "bytes32"),
        ],
    }.items()
}
_JOB_MESSAGES: Final = {"status": "Get job status for {}", "cancel": "Cancel job {}"}


def _checksummed(value: str, what: str) -> str:
    if not isinstance(value, str) or not _HEX_ADDRESS.fullmatch(value):
        raise ConfigError(f"{what} must be a 0x-prefixed 20-byte hex address, got {value!r}")
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
        if self.price_atomic >= _UINT256_LIMIT:
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
    if atomic >= _UINT256_LIMIT:
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


def challenge_body(
    terms: PaymentTerms, resource_url: str, error: str = "X-PAYMENT header is required"
) -> dict[str, Any]:
    """The x402 v1 ``402`` body, shaped like x402-express and valid for x402-fetch 1.2.0's zod.

    ``resource_url`` must be absolute (zod ``.url()``), e.g. ``str(request.url)``.
    ``outputSchema.output`` is omitted, as x402-express omits an undefined one.

    Example::

        challenge_body(PaymentTerms(), "http://127.0.0.1:8402/v2/prompt")["accepts"][0]["payTo"]
    """
    if not _ABSOLUTE_URL.fullmatch(resource_url):
        raise ValueError(f"resource_url must be an absolute http(s) URL, got {resource_url!r}")
    requirement = {
        "scheme": _SCHEME,
        "network": terms.network,
        "maxAmountRequired": str(terms.price_atomic),
        "resource": resource_url,
        "description": terms.description,
        "mimeType": terms.mime_type,
        "payTo": terms.pay_to,
        "maxTimeoutSeconds": terms.max_timeout_seconds,
        "asset": terms.asset,
        "outputSchema": {"input": {"type": "http", "method": "POST", "discoverable": True}},
        "extra": {"name": terms.token_name, "version": terms.token_version},
    }
    return {"x402Version": 1, "error": error, "accepts": [requirement]}


@dataclass(frozen=True, slots=True)
class VerifiedPayment:
    """An accepted authorization. ``payer`` is checksummed, ``nonce`` lowercase ``0x`` hex.

    Example::

        paid = verify_payment(header, terms, now=1_764_400_000.0)
        paid.payer, paid.value, paid.nonce
    """

    payer: str
    value: int
    nonce: str
    valid_after: int
    valid_before: int
    network: str
    scheme: str
    signature: str


# Wire shapes of the X-PAYMENT JSON. Typed decoding skips unknown keys without
# recursing, which matters: importing eth-account (py_ecc) raises the recursion
# limit to 100000, and untyped decoding of deeply nested JSON can then overflow
# the C stack.
_Address = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{40}\Z")]
_Uint = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,78}\Z")]
_Bytes32 = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{64}\Z")]
_Hex = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]+\Z")]


class _Envelope(msgspec.Struct):
    x402_version: int = msgspec.field(name="x402Version")
    scheme: str | None = None
    network: str | None = None
    payload: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class _Authorization(msgspec.Struct, rename="camel"):
    from_: _Address = msgspec.field(name="from")
    to: _Address
    value: _Uint
    valid_after: _Uint
    valid_before: _Uint
    nonce: _Bytes32


class _ExactEvmPayload(msgspec.Struct):
    signature: _Hex
    authorization: _Authorization


def _uint256(text: str, name: str) -> int:
    number = int(text)
    if number >= _UINT256_LIMIT:
        raise PaymentRejected(PaymentReason.INVALID_PAYLOAD, f"{name} does not fit in a uint256")
    return number


def _json_error(exc: Exception, path: str) -> PaymentRejected:
    detail = str(exc).replace("`$", f"`{path}", 1)
    return PaymentRejected(PaymentReason.INVALID_PAYLOAD, f"X-PAYMENT JSON: {detail}")


def _decode_envelope(header: object) -> _Envelope:
    if not isinstance(header, str | bytes):
        raise PaymentRejected(PaymentReason.INVALID_PAYLOAD, "X-PAYMENT must be a string")
    if len(header) > MAX_HEADER_CHARS:
        raise PaymentRejected(PaymentReason.INVALID_PAYLOAD, f"over {MAX_HEADER_CHARS} chars")
    try:
        raw = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        raise PaymentRejected(PaymentReason.INVALID_PAYLOAD, "X-PAYMENT is not base64") from None
    try:
        return msgspec.json.decode(raw, type=_Envelope)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _json_error(exc, "$") from None


def verify_payment(header: str | bytes, terms: PaymentTerms, now: float) -> VerifiedPayment:
    """Check an X-PAYMENT header against ``terms`` at simulated time ``now``.

    Accepts ``validAfter <= now < validBefore``, ``to == payTo`` (any case) and
    ``value >= price``. Raises :class:`PaymentRejected` and nothing else, whatever
    the input. Does not check nonce reuse (see :attr:`PaymentReason.NONCE_REUSED`).

    Example::

        paid = verify_payment(request.headers["X-PAYMENT"], PaymentTerms(), now=clock.now())
    """
    envelope = _decode_envelope(header)
    if envelope.x402_version != 1:
        raise PaymentRejected(PaymentReason.INVALID_X402_VERSION, f"{envelope.x402_version} != 1")
    scheme, network = envelope.scheme, envelope.network
    if scheme is None or network is None or not envelope.payload:
        raise PaymentRejected(PaymentReason.INVALID_PAYLOAD, "needs scheme, network, payload")
    if scheme != _SCHEME:
        raise PaymentRejected(PaymentReason.INVALID_SCHEME, f"{scheme!r} != 'exact'")
    if network != terms.network:
        raise PaymentRejected(PaymentReason.INVALID_NETWORK, f"{network!r} != {terms.network!r}")
    try:
        payload = msgspec.json.decode(envelope.payload, type=_ExactEvmPayload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _json_error(exc, "$.payload") from None
    auth = payload.authorization
    value = _uint256(auth.value, "value")
    valid_after = _uint256(auth.valid_after, "validAfter")
    valid_before = _uint256(auth.valid_before, "validBefore")
    if auth.to.lower() != terms.pay_to.lower():
        raise PaymentRejected(PaymentReason.RECIPIENT_MISMATCH, f"to {auth.to} != {terms.pay_to}")
    if now >= valid_before:
        raise PaymentRejected(PaymentReason.EXPIRED, f"validBefore {valid_before} <= now {now}")
    if valid_after > now:
        raise PaymentRejected(PaymentReason.NOT_YET_VALID, f"validAfter {valid_after} > now {now}")
    if value < terms.price_atomic:
        raise PaymentRejected(PaymentReason.UNDERPAID, f"value {value} < {terms.price_atomic}")
    if len(payload.signature) != 132:
        raise PaymentRejected(PaymentReason.INVALID_SIGNATURE, "not 65 bytes of hex")
    payer: str = to_checksum_address(auth.from_)
    nonce = auth.nonce.lower()
    typed = {
        "types": _TRANSFER_TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": terms.token_name,
            "version": terms.token_version,
            "chainId": NETWORK_CHAIN_IDS[terms.network],
            "verifyingContract": terms.asset,
        },
        "message": {
            "from": payer,
            "to": terms.pay_to,
            "value": value,
            "validAfter": valid_after,
            "validBefore": valid_before,
            "nonce": bytes.fromhex(nonce[2:]),
        },
    }
    try:
        signable = encode_typed_data(full_message=typed)
        signer: str = Account.recover_message(signable, signature=payload.signature)
    except Exception:  # eth-keys raises BadSignature, ValueError or ValidationError
        signer = ""
    if signer != payer:
        raise PaymentRejected(PaymentReason.INVALID_SIGNATURE, f"not signed by from {payer}")
    return VerifiedPayment(
        payer=payer,
        value=value,
        nonce=nonce,
        valid_after=valid_after,
        valid_before=valid_before,
        network=network,
        scheme=scheme,
        signature=payload.signature.lower(),
    )


def transaction_hash(nonce: str) -> str:
    """The fake settlement hash of a payment: keccak-256 of its 32 nonce bytes.

    Example::

        transaction_hash("0x" + "00" * 32)  # "0x290decd9548b62a8..."
    """
    return "0x" + keccak(bytes.fromhex(nonce.removeprefix("0x"))).hex()


def payment_response_header(verified: VerifiedPayment, network: str | None = None) -> str:
    """The ``X-PAYMENT-RESPONSE`` value: base64 JSON of a successful (simulated) settlement.

    Example::

        response.headers["X-PAYMENT-RESPONSE"] = payment_response_header(paid)
    """
    body = {
        "success": True,
        "transaction": transaction_hash(verified.nonce),
        "network": network if network is not None else verified.network,
        "payer": verified.payer,
    }
    return base64.b64encode(msgspec.json.encode(body)).decode("ascii")


@functools.lru_cache(maxsize=4096)
def _personal_signer(message: str, signature: str) -> str:
    # Memoised: viem signs deterministically (RFC 6979) and the SDK re-sends the
    # same three headers on every poll, so each distinct signature is recovered once.
    try:
        signer: str = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception:  # eth-keys raises BadSignature, ValueError or ValidationError
        return ""
    return signer


def verify_job_signature(
    headers: Mapping[str, str], job_id: str, action: Literal["status", "cancel"]
) -> str:
    """Authenticate a ``/v2/job/{id}`` request; return the checksummed signing wallet.

    Reads ``wallet-address``, ``x-signature`` and ``x-message`` (names in any
    case). Whether that wallet owns the job is the caller's check.

    Example::

        owner = verify_job_signature(request.headers, job_id, "status")
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    wallet = lowered.get("wallet-address")
    signature = lowered.get("x-signature")
    message = lowered.get("x-message")
    if not wallet:
        raise JobAuthError(JobAuthReason.MISSING_WALLET_ADDRESS, "wallet-address header needed")
    if not signature:
        raise JobAuthError(JobAuthReason.MISSING_SIGNATURE, "x-signature header needed")
    if not message:
        raise JobAuthError(JobAuthReason.MISSING_MESSAGE, "x-message header needed")
    if not _HEX_ADDRESS.fullmatch(wallet):
        raise JobAuthError(JobAuthReason.INVALID_WALLET_ADDRESS, f"not an address: {wallet!r}")
    expected = _JOB_MESSAGES[action].format(job_id)
    if message != expected:
        raise JobAuthError(JobAuthReason.MESSAGE_MISMATCH, f"x-message must be {expected!r}")
    if not _HEX_SIGNATURE_65.fullmatch(signature):
        raise JobAuthError(JobAuthReason.INVALID_SIGNATURE, "x-signature: not 65 bytes of hex")
    signer = _personal_signer(message, signature.lower())
    if not signer:
        raise JobAuthError(JobAuthReason.INVALID_SIGNATURE, "x-signature does not recover")
    if signer.lower() != wallet.lower():
        raise JobAuthError(JobAuthReason.SIGNER_MISMATCH, f"signed by {signer}, not {wallet}")
    return signer
