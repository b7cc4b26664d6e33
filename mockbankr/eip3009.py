"""Who signed an EIP-3009 ``TransferWithAuthorization``: an x402 payment's digest and signer.

eth-account's ``encode_typed_data`` parses the whole EIP-712 document on every call (types,
ABI encoding, the domain hashed again), and eth-keys validates what it hands to libsecp256k1;
together they cost several times the recovery itself. The key is recovered by coincurve
(libsecp256k1) directly. The payment's shape never changes, so
the digest is built from its one fixed type: the domain separator is eth-account's own,
computed once per set of terms, and the struct is six 32-byte words. ``tests/test_eip3009.py``
checks both against eth-account on generated authorizations.

Example::

    signer = transfer_signer(domain, authorization_fields, signature_hex)
    signer == bytes.fromhex(authorization_from[2:])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import coincurve
import sha3  # safe-pysha3: keccak-256 in C, about 6x cheaper a call than pycryptodome's

__all__ = [
    "SECP256K1_N",
    "Transfer",
    "TransferDomain",
    "domain_separator",
    "high_s",
    "transfer_digest",
    "transfer_signer",
]

#: The order of secp256k1's group. For every signature ``(r, s, v)`` there is a twin
#: ``(r, n - s, v ^ 1)`` of the same message and key; USDC (and EIP-2) accept only the
#: one with ``s <= n / 2``.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _keccak(data: bytes) -> bytes:
    """Keccak-256, as Ethereum hashes (not NIST SHA3-256)."""
    digest: bytes = sha3.keccak_256(data).digest()
    return digest


#: ``keccak256`` of the EIP-712 type string of x402's ``exact`` EVM scheme (EIP-3009).
_TYPE_HASH = _keccak(
    b"TransferWithAuthorization(address from,address to,uint256 value,"
    b"uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)


@dataclass(frozen=True)
class TransferDomain:
    """The EIP-712 domain of the token: ``name``, ``version``, chain id and contract."""

    name: str
    version: str
    chain_id: int
    contract: str


@dataclass(frozen=True)
class Transfer:
    """The six fields of a ``TransferWithAuthorization``; addresses and nonce as ``0x`` hex."""

    from_: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: str


@functools.lru_cache(maxsize=64)
def domain_separator(domain: TransferDomain) -> bytes:
    """The domain's EIP-712 separator, by eth-account itself (once per domain)."""
    from eth_account.messages import encode_typed_data

    message = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Empty": [],
        },
        "primaryType": "Empty",
        "domain": {
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id,
            "verifyingContract": domain.contract,
        },
        "message": {},
    }
    header: bytes = encode_typed_data(full_message=message).header
    return header


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address(address: str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise ValueError(f"not a 20-byte address: {address!r}")
    return bytes(12) + raw


def transfer_digest(domain: TransferDomain, transfer: Transfer) -> bytes:
    """The 32 bytes a payer signs: ``keccak(0x1901 || domain separator || struct hash)``.

    Raises ``ValueError`` for a field that does not fit its type.
    """
    nonce = bytes.fromhex(transfer.nonce.removeprefix("0x"))
    if len(nonce) != 32:
        raise ValueError("the nonce is not 32 bytes")
    struct = _keccak(
        _TYPE_HASH
        + _address(transfer.from_)
        + _address(transfer.to)
        + _word(transfer.value)
        + _word(transfer.valid_after)
        + _word(transfer.valid_before)
        + nonce
    )
    return _keccak(b"\x19\x01" + domain_separator(domain) + struct)


def high_s(signature: bytes) -> bool:
    """Whether a 65-byte ``r || s || v`` signature is the malleated twin (``s > n / 2``).

    USDC's ``ECRecover.recover`` reverts on it ("ECRecover: invalid signature 's' value"),
    so a payment signed so can never settle.

    Example::

        high_s(bytes.fromhex(signature[2:]))  # False for what eth-account or viem sign
    """
    return int.from_bytes(signature[32:64], "big") > SECP256K1_N // 2


def transfer_signer(domain: TransferDomain, transfer: Transfer, signature: str) -> bytes | None:
    """The 20-byte address that signed ``transfer``, or ``None`` if the signature is unusable.

    ``signature`` is 65 bytes of ``0x`` hex, ``r || s || v`` with ``v`` in 0, 1, 27 or 28 (as
    eth-account accepts it). A high-``s`` signature (see :func:`high_s`) recovers nobody, as
    USDC's own check would have it.
    """
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
        if len(raw) != 65 or raw[64] not in (0, 1, 27, 28) or high_s(raw):
            return None
        digest = transfer_digest(domain, transfer)
        # libsecp256k1 itself: eth-keys would wrap the same call in validation it costs twice
        public_key = coincurve.PublicKey.from_signature_and_message(
            raw[:64] + bytes([raw[64] % 27]), digest, hasher=None
        )
    except Exception:  # a bad hex string, field, r, s or v: nobody signed it
        return None
    address: bytes = _keccak(public_key.format(compressed=False)[1:])[-20:]
    return address
