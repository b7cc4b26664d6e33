"""EIP-191 job signatures: who may read or cancel a ``/v2/job/{id}``.

The official SDK signs ``Get job status for {id}`` (or ``Cancel job {id}``) with
the paying wallet and sends ``wallet-address``, ``x-signature`` and
``x-message``. Pure logic: no I/O, no clock. Whether the wallet owns the job is
the simulator's check, not this module's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Final, Literal

from eth_account import Account
from eth_account.messages import encode_defunct

from mockbankr.errors import JobAuthError

__all__ = ["JobAuthReason", "job_message", "verify_job_signature"]


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


_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX_SIGNATURE_65 = re.compile(r"0x[0-9a-fA-F]{130}")
_JOB_MESSAGES: Final = {"status": "Get job status for {}", "cancel": "Cancel job {}"}


def job_message(job_id: str, action: Literal["status", "cancel"]) -> str:
    """The exact text the owning wallet signs to read or cancel a job.

    Example::

        job_message("job_1", "cancel") == "Cancel job job_1"
    """
    return _JOB_MESSAGES[action].format(job_id)


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
    case; the first of a repeated one). Whether that wallet owns the job is the
    caller's check.

    Example::

        owner = verify_job_signature(request.headers, job_id, "status")
    """
    lowered: dict[str, str] = {}
    for name, value in headers.items():  # the first of repeated headers, as identify() reads
        lowered.setdefault(name.lower(), value)
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
    expected = job_message(job_id, action)
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
