"""Client-side signing for tests: X-PAYMENT and job-auth headers, built as the JS clients do.

:func:`make_payment_header` follows npm ``x402-fetch``/``x402`` 1.2.0
(``preparePaymentHeader``, ``signAuthorization``, ``encodePayment``): ``validAfter`` is
``floor(now) - 600``, ``validBefore`` is ``floor(now + maxTimeoutSeconds)``, every number is
a decimal string, the nonce is 32 random bytes, the EIP-712 domain comes from
``extra.name``/``extra.version``, and the JSON is compact, in x402-fetch's key order, then
standard base64. ``tests/test_x402.py`` pins it byte for byte against a header the real
x402-fetch produced. It deliberately shares no code with :mod:`mockbankr.x402`, so a wrong
domain or type string cannot be wrong on both sides at once.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Literal

from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

__all__ = ["Tamper", "make_payment_header", "malleate", "sign_job_headers"]

#: The order of secp256k1's group (written out here, not imported from mockbankr).
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

Tamper = Callable[[dict[str, Any]], dict[str, Any] | None]
"""Edits the decoded payment after signing (in place, or returns a replacement)."""

_CHAIN_IDS = {"base": 8453, "base-sepolia": 84532}  # x402 EvmNetworkToChainId
_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


def make_payment_header(
    account: LocalAccount,
    requirements: Mapping[str, Any],
    *,
    now: float,
    value: int | None = None,
    to: str | None = None,
    valid_after: int | None = None,
    valid_before: int | None = None,
    nonce: bytes | str | None = None,
    network: str | None = None,
    scheme: str | None = None,
    tamper: Tamper | None = None,
) -> str:
    """Pay one ``accepts[]`` entry like x402-fetch 1.2.0; the keyword arguments bend the rules.

    ``value``, ``to``, ``valid_after``, ``valid_before`` and ``nonce`` change what is signed
    *and* sent. ``network`` and ``scheme`` change only the envelope (the signature still uses
    the requirement's chain). ``tamper`` edits the payment after signing.

    Example::

        header = make_payment_header(acct, challenge["accepts"][0], now=clock.now())
    """
    if nonce is None:
        nonce_bytes = secrets.token_bytes(32)
    elif isinstance(nonce, str):
        nonce_bytes = bytes.fromhex(nonce.removeprefix("0x"))
    else:
        nonce_bytes = nonce
    after = math.floor(now) - 600 if valid_after is None else valid_after
    before = (
        math.floor(now + requirements["maxTimeoutSeconds"])
        if valid_before is None
        else valid_before
    )
    pay_to = requirements["payTo"] if to is None else to
    amount = requirements["maxAmountRequired"] if value is None else str(value)
    extra = requirements.get("extra") or {}
    typed = {
        "types": _TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": extra.get("name"),
            "version": extra.get("version"),
            "chainId": _CHAIN_IDS[requirements["network"]],
            "verifyingContract": to_checksum_address(requirements["asset"]),
        },
        "message": {
            "from": account.address,
            "to": to_checksum_address(pay_to),
            "value": int(amount),
            "validAfter": after,
            "validBefore": before,
            "nonce": nonce_bytes,
        },
    }
    signature = account.sign_message(encode_typed_data(full_message=typed)).signature
    payment: dict[str, Any] = {
        "x402Version": 1,
        "scheme": requirements["scheme"] if scheme is None else scheme,
        "network": requirements["network"] if network is None else network,
        "payload": {
            "signature": signature.to_0x_hex(),
            "authorization": {
                "from": account.address,
                "to": pay_to,
                "value": amount,
                "validAfter": str(after),
                "validBefore": str(before),
                "nonce": "0x" + nonce_bytes.hex(),
            },
        },
    }
    if tamper is not None:
        replaced = tamper(payment)
        payment = payment if replaced is None else replaced
    return base64.b64encode(json.dumps(payment, separators=(",", ":")).encode()).decode()


def sign_job_headers(
    account: LocalAccount, job_id: str, action: Literal["status", "cancel"]
) -> dict[str, str]:
    """The three headers ``@bankr/sdk`` sends on ``GET /v2/job/{id}`` or its cancel.

    Example::

        http.get(f"/v2/job/{job_id}", headers=sign_job_headers(acct, job_id, "status"))
    """
    message = f"Get job status for {job_id}" if action == "status" else f"Cancel job {job_id}"
    signature = account.sign_message(encode_defunct(text=message)).signature
    return {
        "wallet-address": account.address,
        "x-signature": signature.to_0x_hex(),
        "x-message": message,
    }


def malleate(signature: str) -> str:
    """The twin of a 65-byte ``0x`` signature: ``s' = n - s``, ``v`` flipped (27 <-> 28).

    It recovers the same key for the same message, but its ``s`` is above ``n / 2``,
    which USDC's ``ECRecover`` refuses.

    Example::

        tamper=lambda p: p["payload"].update(signature=malleate(p["payload"]["signature"]))
    """
    raw = bytes.fromhex(signature.removeprefix("0x"))
    s = int.from_bytes(raw[32:64], "big")
    v = raw[64]
    flipped = {27: 28, 28: 27, 0: 1, 1: 0}[v]
    return "0x" + (raw[:32] + (_N - s).to_bytes(32, "big") + bytes([flipped])).hex()
