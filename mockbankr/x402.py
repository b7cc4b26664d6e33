"""The server side of x402 v1 for ``POST /v2/prompt``: the challenge and payment verification.

What a prompt costs lives in :mod:`mockbankr.money`; the EIP-191 signatures of
``/v2/job/*`` requests in :mod:`mockbankr.job_auth`.

Pure logic: no I/O, no clock, no randomness. Time arrives as ``now`` (simulated
unix seconds). Payments are verified by recovering the EIP-712
``TransferWithAuthorization`` signer locally (:mod:`mockbankr.eip3009`); nothing is ever
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
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final

import msgspec
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from mockbankr.eip3009 import Transfer, TransferDomain, high_s, transfer_signer
from mockbankr.errors import PaymentRejected
from mockbankr.money import NETWORK_CHAIN_IDS, UINT256_LIMIT, PaymentTerms

__all__ = [
    "MAX_HEADER_CHARS",
    "PaymentReason",
    "VerifiedPayment",
    "challenge_body",
    "claimed_payer",
    "payment_response_header",
    "transaction_hash",
    "verify_payment",
]

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


_SCHEME: Final = "exact"
# A wallet pays again and again: its EIP-55 spelling (a keccak and much Python) is kept.
_checksummed = functools.lru_cache(maxsize=4096)(to_checksum_address)
_ABSOLUTE_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?")


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
    if number >= UINT256_LIMIT:
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
    if _high_s(payload.signature):
        raise PaymentRejected(
            PaymentReason.INVALID_SIGNATURE,
            "s is above secp256k1n/2 (a malleated signature: USDC's ECRecover refuses it)",
        )
    payer: str = _checksummed(auth.from_.lower())
    nonce = auth.nonce.lower()
    domain = TransferDomain(
        terms.token_name, terms.token_version, NETWORK_CHAIN_IDS[terms.network], terms.asset
    )
    transfer = Transfer(payer, terms.pay_to, value, valid_after, valid_before, nonce)
    recovered = transfer_signer(domain, transfer, payload.signature)  # eip3009: 5x faster
    signer = payer if recovered == bytes.fromhex(payer[2:]) else ""
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


def _high_s(signature: str) -> bool:
    try:
        return high_s(bytes.fromhex(signature.removeprefix("0x")))
    except ValueError:  # not hex: the recovery refuses it with the same reason
        return False


@functools.lru_cache(maxsize=64)  # asked twice per paid prompt: the ledger and the header
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


class _PeekAuthorization(msgspec.Struct):
    from_: str = msgspec.field(name="from")


class _PeekPayload(msgspec.Struct):
    authorization: _PeekAuthorization


class _PaymentPeek(msgspec.Struct):
    payload: _PeekPayload


def claimed_payer(header: str | None) -> str | None:
    """The payer an X-PAYMENT header names, *unverified*, or ``None``.

    For telling who a caller claims to be (rule matching, the journal) before,
    or without, paying the cost of :func:`verify_payment`. Typed decoding stops
    at the first wrong level, so hostile nesting is cheap.

    Example::

        claimed_payer(request.headers.get("x-payment"))  # "0xAbc..." or None
    """
    if not header or len(header) > MAX_HEADER_CHARS:
        return None
    try:
        peek = msgspec.json.decode(base64.b64decode(header), type=_PaymentPeek)
    except (binascii.Error, msgspec.DecodeError, ValueError):
        return None
    return peek.payload.authorization.from_
