"""x402 v1 challenge, X-PAYMENT verification and the settlement header.

The two ``REAL_*`` vectors were produced once by the official JS stack (Node 20, viem 2,
x402-fetch 1.2.0 from ``.peer/node_modules``): ``wrapFetchWithPayment`` was given a fake
``fetch`` that answered ``challenge_body(PaymentTerms(), RESOURCE)`` with a 402 and captured
the retried request's X-PAYMENT, with ``Date.now`` pinned to ``REAL_NOW_MS`` and
``crypto.getRandomValues`` filling bytes 0..31. x402-fetch zod-validates the challenge
before paying, so the vector also proves the challenge passes ``PaymentRequirementsSchema``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import coincurve
import pytest
from _x402_signing import make_payment_header, malleate
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockbankr.eip3009 import Transfer, TransferDomain, transfer_digest
from mockbankr.errors import MockbankrError, PaymentRejected
from mockbankr.money import (
    DEFAULT_PAY_TO,
    USDC_BASE,
    PaymentTerms,
    usdc_to_atomic,
)
from mockbankr.x402 import (
    MAX_HEADER_CHARS,
    PaymentReason,
    challenge_body,
    claimed_payer,
    payment_response_header,
    transaction_hash,
    verify_payment,
)

RESOURCE = "http://127.0.0.1:8402/v2/prompt"
REAL_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
REAL_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
REAL_NOW_MS = 1764400000123
REAL_X402_FETCH_HEADER = (
    "eyJ4NDAyVmVyc2lvbiI6MSwic2NoZW1lIjoiZXhhY3QiLCJuZXR3b3JrIjoiYmFzZSIsInBheWxvYWQiOnsic2lnbmF0"
    "dXJlIjoiMHg1OGNkYmZiOWIyOWU0ZTFhNDQ4YmI5MDUxYWU4ODhkNzNiY2ViODQxMGQ0MmI2ZjE2MGFkMjg5Y2Y4YzA0"
    "NzE5NDVlMjU5OGMzZjEyY2U1ODllZDA3NjlhNGM1OTIwODhiYjgzNDJiYjk2NmM0MTNmY2E1ZDljNDI3YzliY2ZlYjFi"
    "IiwiYXV0aG9yaXphdGlvbiI6eyJmcm9tIjoiMHgyYzc1MzZFMzYwNUQ5QzE2YTdhM0Q3YjE4OThlNTI5Mzk2YTY1YzIz"
    "IiwidG8iOiIweDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMGRFYUQiLCJ2YWx1ZSI6IjEwMDAwMCIs"
    "InZhbGlkQWZ0ZXIiOiIxNzY0Mzk5NDAwIiwidmFsaWRCZWZvcmUiOiIxNzY0NDAwMDYwIiwibm9uY2UiOiIweDAwMDEw"
    "MjAzMDQwNTA2MDcwODA5MGEwYjBjMGQwZTBmMTAxMTEyMTMxNDE1MTYxNzE4MTkxYTFiMWMxZDFlMWYifX19"
)
NOW = 1_764_400_000.5
TERMS = PaymentTerms()
REQ: dict[str, Any] = challenge_body(TERMS, RESOURCE)["accepts"][0]
ALICE: LocalAccount = Account.from_key(b"\x0a" * 32)
BOB: LocalAccount = Account.from_key(b"\x0b" * 32)
NONCE = bytes(range(100, 132))


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def decoded(header: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(base64.b64decode(header))
    return result


def pay(**kwargs: Any) -> str:
    """A header from ALICE for the default terms at NOW, with overrides."""
    return make_payment_header(ALICE, REQ, now=NOW, nonce=NONCE, **kwargs)


def reason_of(header: str, terms: PaymentTerms = TERMS, now: float = NOW) -> str:
    with pytest.raises(PaymentRejected) as info:
        verify_payment(header, terms, now)
    return info.value.reason


def _set_auth(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def tamper(p: dict[str, Any]) -> None:
        p["payload"]["authorization"][key] = value

    return tamper


def _del_auth(key: str) -> Callable[[dict[str, Any]], None]:
    def tamper(p: dict[str, Any]) -> None:
        del p["payload"]["authorization"][key]

    return tamper


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def tamper(p: dict[str, Any]) -> None:
        p[key] = value

    return tamper


def _del(key: str) -> Callable[[dict[str, Any]], None]:
    def tamper(p: dict[str, Any]) -> None:
        del p[key]

    return tamper


def _signature(value: str) -> Callable[[dict[str, Any]], None]:
    def tamper(p: dict[str, Any]) -> None:
        p["payload"]["signature"] = value

    return tamper


def _signed_by_bob_claiming_alice() -> str:
    header = make_payment_header(BOB, REQ, now=NOW, nonce=NONCE)
    return make_payment_header(
        ALICE, REQ, now=NOW, nonce=NONCE, tamper=_signature(decoded(header)["payload"]["signature"])
    )


R = PaymentReason
REFUSALS: list[tuple[str, Callable[[], str], str]] = [
    ("not base64", lambda: "this is not base64!", R.INVALID_PAYLOAD),
    ("empty header", lambda: "", R.INVALID_PAYLOAD),
    (
        "url-safe base64 alphabet",
        lambda: pay().replace("+", "-").replace("/", "_") + "-_",
        R.INVALID_PAYLOAD,
    ),
    ("base64 of non-JSON", lambda: b64("hello"), R.INVALID_PAYLOAD),
    ("base64 of invalid UTF-8", lambda: b64(b"\xff\xfe{}"), R.INVALID_PAYLOAD),
    ("JSON array", lambda: b64("[1, 2]"), R.INVALID_PAYLOAD),
    ("JSON null", lambda: b64("null"), R.INVALID_PAYLOAD),
    ("x402Version missing", lambda: pay(tamper=_del("x402Version")), R.INVALID_PAYLOAD),
    ("x402Version as a string", lambda: pay(tamper=_set("x402Version", "1")), R.INVALID_PAYLOAD),
    ("x402Version true", lambda: pay(tamper=_set("x402Version", True)), R.INVALID_PAYLOAD),
    ("x402Version 2", lambda: pay(tamper=_set("x402Version", 2)), R.INVALID_X402_VERSION),
    ("x402Version 0", lambda: pay(tamper=_set("x402Version", 0)), R.INVALID_X402_VERSION),
    ("scheme missing", lambda: pay(tamper=_del("scheme")), R.INVALID_PAYLOAD),
    ("network missing", lambda: pay(tamper=_del("network")), R.INVALID_PAYLOAD),
    ("payload missing", lambda: pay(tamper=_del("payload")), R.INVALID_PAYLOAD),
    ("payload null", lambda: pay(tamper=_set("payload", None)), R.INVALID_PAYLOAD),
    ("scheme upto", lambda: pay(scheme="upto"), R.INVALID_SCHEME),
    ("scheme EXACT", lambda: pay(scheme="EXACT"), R.INVALID_SCHEME),
    ("network base-sepolia", lambda: pay(network="base-sepolia"), R.INVALID_NETWORK),
    ("network eip155:8453 (v2 name)", lambda: pay(network="eip155:8453"), R.INVALID_NETWORK),
    (
        "solana payload",
        lambda: pay(
            tamper=lambda p: {**p, "network": "solana", "payload": {"transaction": "AA=="}}
        ),
        R.INVALID_NETWORK,
    ),
    (
        "authorization missing",
        lambda: pay(tamper=lambda p: p["payload"].pop("authorization")),
        R.INVALID_PAYLOAD,
    ),
    (
        "signature missing",
        lambda: pay(tamper=lambda p: p["payload"].pop("signature")),
        R.INVALID_PAYLOAD,
    ),
    ("nonce missing", lambda: pay(tamper=_del_auth("nonce")), R.INVALID_PAYLOAD),
    ("from missing", lambda: pay(tamper=_del_auth("from")), R.INVALID_PAYLOAD),
    ("validBefore missing", lambda: pay(tamper=_del_auth("validBefore")), R.INVALID_PAYLOAD),
    ("value as a JSON number", lambda: pay(tamper=_set_auth("value", 100000)), R.INVALID_PAYLOAD),
    (
        "validAfter as a JSON number",
        lambda: pay(tamper=_set_auth("validAfter", 0)),
        R.INVALID_PAYLOAD,
    ),
    ("value negative", lambda: pay(tamper=_set_auth("value", "-100000")), R.INVALID_PAYLOAD),
    ("value in exponent form", lambda: pay(tamper=_set_auth("value", "1e5")), R.INVALID_PAYLOAD),
    ("value with a newline", lambda: pay(tamper=_set_auth("value", "100000\n")), R.INVALID_PAYLOAD),
    ("value over uint256", lambda: pay(tamper=_set_auth("value", str(2**256))), R.INVALID_PAYLOAD),
    (
        "nonce of 31 bytes",
        lambda: pay(tamper=_set_auth("nonce", "0x" + "ab" * 31)),
        R.INVALID_PAYLOAD,
    ),
    ("nonce without 0x", lambda: pay(tamper=_set_auth("nonce", NONCE.hex())), R.INVALID_PAYLOAD),
    ("from not an address", lambda: pay(tamper=_set_auth("from", "alice.eth")), R.INVALID_PAYLOAD),
    ("to of 19 bytes", lambda: pay(tamper=_set_auth("to", "0x" + "00" * 19)), R.INVALID_PAYLOAD),
    ("signature not hex", lambda: pay(tamper=_signature("0xnothex")), R.INVALID_PAYLOAD),
    (
        "signature of 64 bytes",
        lambda: pay(tamper=_signature("0x" + "11" * 64)),
        R.INVALID_SIGNATURE,
    ),
    (
        "signature of 66 bytes",
        lambda: pay(tamper=_signature("0x" + "11" * 66)),
        R.INVALID_SIGNATURE,
    ),
    ("signature all zero", lambda: pay(tamper=_signature("0x" + "00" * 65)), R.INVALID_SIGNATURE),
    (
        "signature with v=29",
        lambda: pay(tamper=_signature("0x" + "11" * 64 + "1d")),
        R.INVALID_SIGNATURE,
    ),
    ("signature all ff", lambda: pay(tamper=_signature("0x" + "ff" * 65)), R.INVALID_SIGNATURE),
    ("underpaid by one unit", lambda: pay(value=99_999), R.UNDERPAID),
    ("paid nothing", lambda: pay(value=0), R.UNDERPAID),
    ("to another address", lambda: pay(to="0x" + "12" * 20), R.RECIPIENT_MISMATCH),
    ("expired half a second ago", lambda: pay(valid_before=int(NOW)), R.EXPIRED),
    ("expired long ago", lambda: pay(valid_after=0, valid_before=1), R.EXPIRED),
    ("not yet valid", lambda: pay(valid_after=int(NOW) + 1), R.NOT_YET_VALID),
    (
        "value raised after signing",
        lambda: pay(tamper=_set_auth("value", "200000")),
        R.INVALID_SIGNATURE,
    ),
    (
        "nonce changed after signing",
        lambda: pay(tamper=_set_auth("nonce", "0x" + "ab" * 32)),
        R.INVALID_SIGNATURE,
    ),
    (
        "validBefore moved after signing",
        lambda: pay(tamper=_set_auth("validBefore", str(int(NOW) + 99))),
        R.INVALID_SIGNATURE,
    ),
    (
        "from swapped after signing",
        lambda: pay(tamper=_set_auth("from", BOB.address)),
        R.INVALID_SIGNATURE,
    ),
    ("signed by Bob, from says Alice", _signed_by_bob_claiming_alice, R.INVALID_SIGNATURE),
    (
        "signed for Base Sepolia's chain id",
        lambda: make_payment_header(
            ALICE, {**REQ, "network": "base-sepolia"}, now=NOW, network="base"
        ),
        R.INVALID_SIGNATURE,
    ),
    (
        "signed with another EIP-712 domain name",
        lambda: make_payment_header(
            ALICE, {**REQ, "extra": {"name": "USDC", "version": "2"}}, now=NOW
        ),
        R.INVALID_SIGNATURE,
    ),
    (
        "signed for another token contract",
        lambda: make_payment_header(ALICE, {**REQ, "asset": "0x" + "34" * 20}, now=NOW),
        R.INVALID_SIGNATURE,
    ),
]


def test_the_reason_vocabulary_is_pinned() -> None:
    assert {str(r) for r in PaymentReason} == {
        "invalid_payload",
        "invalid_x402_version",
        "invalid_scheme",
        "invalid_network",
        "invalid_exact_evm_payload_signature",
        "invalid_exact_evm_payload_recipient_mismatch",
        "invalid_exact_evm_payload_authorization_valid_before",
        "invalid_exact_evm_payload_authorization_valid_after",
        "invalid_exact_evm_payload_authorization_value",
        "invalid_exact_evm_nonce_already_used",
    }


def test_a_real_x402_fetch_payment_is_accepted() -> None:
    paid = verify_payment(REAL_X402_FETCH_HEADER, TERMS, REAL_NOW_MS / 1000)
    assert paid.payer == REAL_ADDRESS
    assert paid.value == 100_000
    assert paid.nonce == "0x" + bytes(range(32)).hex()
    assert (paid.valid_after, paid.valid_before) == (1764399400, 1764400060)
    assert (paid.network, paid.scheme) == ("base", "exact")


def test_the_helper_reproduces_x402_fetch_byte_for_byte() -> None:
    account = Account.from_key(REAL_KEY)
    header = make_payment_header(account, REQ, now=REAL_NOW_MS / 1000, nonce=bytes(range(32)))
    assert header == REAL_X402_FETCH_HEADER


def test_a_valid_payment_is_accepted() -> None:
    paid = verify_payment(pay(), TERMS, NOW)
    assert paid.payer == ALICE.address
    assert paid.value == TERMS.price_atomic
    assert paid.nonce == "0x" + NONCE.hex()
    assert paid.valid_after == int(NOW) - 600
    assert paid.valid_before == int(NOW) + 60
    assert re.fullmatch(r"0x[0-9a-f]{130}", paid.signature)


def test_overpaying_is_accepted_and_reports_the_signed_value() -> None:
    assert verify_payment(pay(value=250_000), TERMS, NOW).value == 250_000


def test_payment_window_boundaries() -> None:
    header = pay(valid_after=1000, valid_before=2000)
    assert verify_payment(header, TERMS, 1000.0).valid_after == 1000
    assert verify_payment(header, TERMS, 1999.999).valid_before == 2000
    assert reason_of(header, now=999.999) == R.NOT_YET_VALID
    assert reason_of(header, now=2000.0) == R.EXPIRED


def test_recipient_and_nonce_compare_case_insensitively() -> None:
    def shout(p: dict[str, Any]) -> None:
        auth = p["payload"]["authorization"]
        auth["to"] = auth["to"].lower()
        auth["nonce"] = "0x" + auth["nonce"][2:].upper()

    paid = verify_payment(pay(tamper=shout), TERMS, NOW)
    assert paid.nonce == "0x" + NONCE.hex()


def test_bytes_headers_and_unknown_keys_are_accepted() -> None:
    header = pay(tamper=lambda p: p.update(extra={"ignored": [1, 2]}))
    assert verify_payment(header.encode(), TERMS, NOW).payer == ALICE.address


@pytest.mark.parametrize(
    ("make", "reason"), [(m, r) for _, m, r in REFUSALS], ids=[i for i, _, _ in REFUSALS]
)
def test_each_refused_payment_gives_its_reason(make: Callable[[], str], reason: str) -> None:
    with pytest.raises(PaymentRejected) as info:
        verify_payment(make(), TERMS, NOW)
    assert info.value.reason == reason
    assert info.value.detail
    assert isinstance(info.value, MockbankrError)


def test_the_malleated_twin_of_a_valid_signature_is_refused_as_usdc_refuses_it() -> None:
    header = pay()
    signature = decoded(header)["payload"]["signature"]
    twin = malleate(signature)
    # The twin is a real signature of the same payment by the same key ...
    digest = transfer_digest(
        TransferDomain("USD Coin", "2", 8453, REQ["asset"]),
        Transfer(
            ALICE.address, REQ["payTo"], 100_000, int(NOW) - 600, int(NOW) + 60, "0x" + NONCE.hex()
        ),
    )
    raw = bytes.fromhex(twin[2:])
    key = coincurve.PublicKey.from_signature_and_message(
        raw[:64] + bytes([raw[64] - 27]), digest, hasher=None
    )
    assert keccak(key.format(compressed=False)[1:])[-20:] == bytes.fromhex(ALICE.address[2:])
    assert verify_payment(header, TERMS, NOW).payer == ALICE.address
    # ... but its s is above n/2: refused with the signature reason, which says why.
    with pytest.raises(PaymentRejected) as info:
        verify_payment(pay(tamper=_signature(twin)), TERMS, NOW)
    assert info.value.reason == R.INVALID_SIGNATURE
    assert "secp256k1n/2" in info.value.detail


def test_other_terms_change_what_is_accepted() -> None:
    dear = PaymentTerms(price_atomic=usdc_to_atomic("0.25"))
    assert reason_of(pay(), terms=dear) == R.UNDERPAID
    sepolia = PaymentTerms(network="base-sepolia")
    req = challenge_body(sepolia, RESOURCE)["accepts"][0]
    assert (
        verify_payment(make_payment_header(ALICE, req, now=NOW), sepolia, NOW).network
        == "base-sepolia"
    )


def test_oversized_and_deeply_nested_headers_are_refused_without_crashing() -> None:
    assert reason_of("A" * (MAX_HEADER_CHARS + 4)) == R.INVALID_PAYLOAD
    # eth-account's py_ecc raises the recursion limit to 100000; untyped JSON decoding of
    # deep nesting could then overflow the C stack. The verifier must stay typed.
    assert reason_of(b64(b"[" * 6000)) == R.INVALID_PAYLOAD
    deep = b'{"x402Version":1,"scheme":"exact","network":"base","payload":' + b"[" * 5900
    assert reason_of(b64(deep)) == R.INVALID_PAYLOAD
    nested = b'{"x402Version":1,"junk":' + b"[" * 5900 + b"]" * 5900 + b"}"
    assert reason_of(b64(nested)) == R.INVALID_PAYLOAD


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "x402Version",
    "scheme",
    "network",
    "payload",
    "signature",
    "from",
    "to",
    "value",
    "validAfter",
    "validBefore",
    "nonce",
]


def _assert_only_rejected(header: str | bytes) -> None:
    """Accepting is allowed (an edit may restore the signed value); any other exception is not."""
    try:
        verify_payment(header, TERMS, NOW)
    except PaymentRejected as exc:
        reason = exc.reason
        assert reason in set(PaymentReason)


@given(st.text(max_size=300))
def test_fuzz_text_headers_only_raise_payment_rejected(header: str) -> None:
    _assert_only_rejected(header)


@given(st.binary(max_size=300))
def test_fuzz_bytes_headers_only_raise_payment_rejected(header: bytes) -> None:
    _assert_only_rejected(header)
    _assert_only_rejected(b64(header))


@given(JSON)
def test_fuzz_base64_json_only_raises_payment_rejected(value: Any) -> None:
    _assert_only_rejected(b64(json.dumps(value)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS), JSON | st.from_regex(r"0x[0-9a-fA-F]{0,140}", fullmatch=True))
def test_fuzz_one_field_of_a_valid_payment_only_raises_payment_rejected(
    field: str, value: Any
) -> None:
    def tamper(p: dict[str, Any]) -> None:
        target = (
            p
            if field in p
            else p["payload"]
            if field in p["payload"]
            else p["payload"]["authorization"]
        )
        target[field] = value

    _assert_only_rejected(pay(tamper=tamper))


def test_challenge_body_field_by_field() -> None:
    body = challenge_body(TERMS, RESOURCE)
    assert json.loads(json.dumps(body)) == body
    assert set(body) == {"x402Version", "error", "accepts"}
    assert body["x402Version"] == 1
    assert body["error"] == "X-PAYMENT header is required"
    [req] = body["accepts"]
    assert set(req) == {
        "scheme", "network", "maxAmountRequired", "resource", "description", "mimeType",
        "payTo", "maxTimeoutSeconds", "asset", "outputSchema", "extra",
    }  # fmt: skip
    assert req["scheme"] == "exact"
    assert req["network"] == "base"
    assert re.fullmatch(r"[0-9]+", req["maxAmountRequired"])
    assert req["maxAmountRequired"] == "100000"
    assert re.fullmatch(r"https?://[^/\s]+/\S*", req["resource"])
    assert req["resource"] == RESOURCE
    assert isinstance(req["description"], str)
    assert req["mimeType"] == "application/json"
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", req["payTo"])
    assert req["payTo"] == DEFAULT_PAY_TO
    assert type(req["maxTimeoutSeconds"]) is int
    assert req["maxTimeoutSeconds"] == 60
    assert req["asset"] == USDC_BASE == "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
    assert req["outputSchema"] == {
        "input": {"type": "http", "method": "POST", "discoverable": True}
    }
    assert req["extra"] == {"name": "USD Coin", "version": "2"}


def test_challenge_body_carries_a_custom_error_and_price() -> None:
    terms = PaymentTerms(price_atomic=1, max_timeout_seconds=300, description="")
    body = challenge_body(terms, "https://api.example/v2/prompt?x=1", error=R.EXPIRED)
    [req] = body["accepts"]
    assert body["error"] == "invalid_exact_evm_payload_authorization_valid_before"
    assert (req["maxAmountRequired"], req["maxTimeoutSeconds"], req["description"]) == (
        "1",
        300,
        "",
    )


@pytest.mark.parametrize(
    "url", ["/v2/prompt", "127.0.0.1:8402/v2/prompt", "ftp://host/x", "http:///x", ""]
)
def test_challenge_body_needs_an_absolute_http_url(url: str) -> None:
    with pytest.raises(ValueError, match="absolute"):
        challenge_body(TERMS, url)


def test_payment_response_header() -> None:
    paid = verify_payment(pay(), TERMS, NOW)
    body = decoded(payment_response_header(paid))
    expected_tx = "0x" + keccak(NONCE).hex()
    assert body == {
        "success": True,
        "transaction": expected_tx,
        "network": "base",
        "payer": ALICE.address,
    }
    assert re.fullmatch(r"0x[0-9a-f]{64}", body["transaction"])
    assert transaction_hash(paid.nonce) == expected_tx
    assert decoded(payment_response_header(paid, "base-sepolia"))["network"] == "base-sepolia"


def test_the_claimed_payer_is_read_without_verifying_the_payment() -> None:
    assert claimed_payer(pay()) == ALICE.address
    forged = _signed_by_bob_claiming_alice()
    assert reason_of(forged) == R.INVALID_SIGNATURE
    assert claimed_payer(forged) == ALICE.address  # a claim, not a proof
    oversized = b64(json.dumps({"payload": {"authorization": {"from": "x" * MAX_HEADER_CHARS}}}))
    for junk in (None, "", "%%%", b64("[]"), b64('{"payload": 1}'), oversized):
        assert claimed_payer(junk) is None
