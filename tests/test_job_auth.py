"""EIP-191 job signatures of ``/v2/job/*`` requests.

The ``REAL_*`` signatures are viem ``account.signMessage`` outputs (Node 20, viem 2) for
the key ``REAL_KEY``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import pytest
from _x402_signing import sign_job_headers
from eth_account import Account
from eth_account.signers.local import LocalAccount

from mockbankr.errors import JobAuthError
from mockbankr.job_auth import JobAuthReason, job_message, verify_job_signature

REAL_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
REAL_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
REAL_JOB_ID = "job_ABC123DEF456"
REAL_STATUS_SIGNATURE = (
    "0xd588389dc6e34e3d10927e5536b22f222cecead61def356b3b59d94e54166b72"
    "5eabe5536366762da4088d2186f0cc6432cbffdcebb26ee38023b919df7e47111b"
)
REAL_CANCEL_SIGNATURE = (
    "0xedf5f68ff8208768b3a6d61d90aa5b81935e0bc03fb88c51559f064c3a791e09"
    "2349e2b1101a5f13039288fe8b5ddb360f59d93b0fadd56a7b3d6e61192b34b31c"
)

ALICE: LocalAccount = Account.from_key(b"\x0a" * 32)
BOB: LocalAccount = Account.from_key(b"\x0b" * 32)

J = JobAuthReason
Action = Literal["status", "cancel"]
JOB = "job_7Q2"


def _job(action: Action = "status", **changes: str | None) -> dict[str, str]:
    headers = sign_job_headers(ALICE, JOB, action)
    for name, value in changes.items():
        key = name.replace("_", "-")
        if value is None:
            del headers[key]
        else:
            headers[key] = value
    return headers


JOB_REFUSALS: list[tuple[str, Callable[[], dict[str, str]], Action, str]] = [
    ("no wallet-address", lambda: _job(wallet_address=None), "status", J.MISSING_WALLET_ADDRESS),
    ("empty wallet-address", lambda: _job(wallet_address=""), "status", J.MISSING_WALLET_ADDRESS),
    ("no x-signature", lambda: _job(x_signature=None), "status", J.MISSING_SIGNATURE),
    ("no x-message", lambda: _job(x_message=None), "status", J.MISSING_MESSAGE),
    ("no headers at all", dict, "status", J.MISSING_WALLET_ADDRESS),
    (
        "wallet not hex",
        lambda: _job(wallet_address="alice.eth"),
        "status",
        J.INVALID_WALLET_ADDRESS,
    ),
    (
        "wallet without 0x",
        lambda: _job(wallet_address=ALICE.address[2:]),
        "status",
        J.INVALID_WALLET_ADDRESS,
    ),
    (
        "wrong message text",
        lambda: _job(x_message=f"get job status for {JOB}"),
        "status",
        J.MESSAGE_MISMATCH,
    ),
    (
        "trailing space",
        lambda: _job(x_message=f"Get job status for {JOB} "),
        "status",
        J.MESSAGE_MISMATCH,
    ),
    (
        "message for another job",
        lambda: sign_job_headers(ALICE, "job_OTHER", "status"),
        "status",
        J.MESSAGE_MISMATCH,
    ),
    ("status message used to cancel", lambda: _job("status"), "cancel", J.MESSAGE_MISMATCH),
    ("cancel message used for status", lambda: _job("cancel"), "status", J.MESSAGE_MISMATCH),
    (
        "signature not hex",
        lambda: _job(x_signature="0x" + "zz" * 65),
        "status",
        J.INVALID_SIGNATURE,
    ),
    (
        "signature too short",
        lambda: _job(x_signature="0x" + "11" * 64),
        "status",
        J.INVALID_SIGNATURE,
    ),
    ("signature without 0x", lambda: _job(x_signature="11" * 65), "status", J.INVALID_SIGNATURE),
    (
        "signature all zero",
        lambda: _job(x_signature="0x" + "00" * 65),
        "status",
        J.INVALID_SIGNATURE,
    ),
    (
        "signature with v=5",
        lambda: _job(x_signature="0x" + "11" * 64 + "05"),
        "status",
        J.INVALID_SIGNATURE,
    ),
    (
        "signed by another wallet",
        lambda: {**sign_job_headers(BOB, JOB, "status"), "wallet-address": ALICE.address},
        "status",
        J.SIGNER_MISMATCH,
    ),
]


@pytest.mark.parametrize(
    ("make", "action", "reason"),
    [(m, a, r) for _, m, a, r in JOB_REFUSALS],
    ids=[i for i, *_ in JOB_REFUSALS],
)
def test_each_refused_job_auth_gives_its_reason(
    make: Callable[[], dict[str, str]], action: Action, reason: str
) -> None:
    with pytest.raises(JobAuthError) as info:
        verify_job_signature(make(), JOB, action)
    assert info.value.reason == reason
    assert info.value.detail


@pytest.mark.parametrize("action", ["status", "cancel"])
def test_valid_job_auth_returns_the_checksummed_wallet(action: Action) -> None:
    headers = sign_job_headers(ALICE, JOB, action)
    assert verify_job_signature(headers, JOB, action) == ALICE.address
    lowered = {**headers, "wallet-address": ALICE.address.lower()}
    assert verify_job_signature(lowered, JOB, action) == ALICE.address
    assert verify_job_signature(lowered, JOB, action) == ALICE.address  # memoised path


def test_job_auth_header_names_are_case_insensitive() -> None:
    headers = {name.upper(): value for name, value in sign_job_headers(BOB, JOB, "cancel").items()}
    assert verify_job_signature(headers, JOB, "cancel") == BOB.address


def test_real_viem_job_signatures_verify() -> None:
    cases: list[tuple[Action, str, str]] = [
        ("status", f"Get job status for {REAL_JOB_ID}", REAL_STATUS_SIGNATURE),
        ("cancel", f"Cancel job {REAL_JOB_ID}", REAL_CANCEL_SIGNATURE),
    ]
    for action, message, signature in cases:
        headers = {"wallet-address": REAL_ADDRESS, "x-signature": signature, "x-message": message}
        assert verify_job_signature(headers, REAL_JOB_ID, action) == REAL_ADDRESS
    assert (
        sign_job_headers(Account.from_key(REAL_KEY), REAL_JOB_ID, "status")["x-signature"]
        == REAL_STATUS_SIGNATURE
    )


def test_the_signed_messages_are_the_sdks() -> None:
    assert job_message("job_1", "status") == "Get job status for job_1"
    assert job_message("job_1", "cancel") == "Cancel job job_1"


def test_a_repeated_header_counts_once_by_its_first_value() -> None:
    # Starlette's Headers.items() gives every raw pair; the first is the claim that
    # the steering rules and the journal read too.
    headers = {**sign_job_headers(ALICE, JOB, "status"), "WALLET-ADDRESS": BOB.address}
    assert verify_job_signature(headers, JOB, "status") == ALICE.address
