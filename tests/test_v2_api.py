"""The x402 flavour (``/v2/*``) over HTTP, in-process on a VirtualClock.

What ``@bankr/sdk`` sees: the 402 challenge, a paid prompt and its receipt header, every
refused payment (a 402 naming the reason, charging nothing), the signed job requests, and
what the ledger (``GET /__mock/ledger``) records. Payments are built as x402-fetch 1.2.0
builds them (``tests/_x402_signing.py``), independently of :mod:`mockbankr.x402`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import math
import random
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal

import httpx
import pytest
from _x402_signing import make_payment_header, malleate, sign_job_headers
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockbankr import JobStore, MemoryStore, Settings, VirtualClock, create_app
from mockbankr.clock import DEFAULT_EPOCH
from mockbankr.money import PaymentTerms, usdc_to_atomic
from mockbankr.testing import AsyncClockTransport, SyncClockTransport
from mockbankr.x402 import PaymentReason
from tests.conftest import KEY, STORES, new_store

R = PaymentReason
Action = Literal["status", "cancel"]
BASE_URL = "http://mockbankr.local"
USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
PRICE = "What is the price of ETH?"
SWAP = "Swap 10 USDC for ETH"
ALICE: LocalAccount = Account.from_key("0x" + "a1" * 32)
BOB: LocalAccount = Account.from_key("0x" + "b2" * 32)
MERCHANT = "0x" + "5e" * 20
#: Fields every ``accepts[]`` entry needs to pass x402-fetch 1.2.0's zod schema.
ZOD_REQUIRED = {
    "scheme",
    "network",
    "maxAmountRequired",
    "resource",
    "description",
    "mimeType",
    "payTo",
    "maxTimeoutSeconds",
    "asset",
}


@contextlib.contextmanager
def server(
    settings_: Settings | None = None, store: JobStore | None = None
) -> Iterator[tuple[httpx.Client, VirtualClock]]:
    """A fresh app; a sync client with no API key (the SDK sends none) and its clock."""
    clock = VirtualClock()
    app = create_app(
        settings_ or Settings(seed=1),
        clock=clock,
        rng=random.Random(1),
        store=store or MemoryStore(),
    )
    with httpx.Client(transport=SyncClockTransport(app, clock), base_url=BASE_URL) as http:
        yield http, clock


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    """The x402 flavour runs on the memory store and on Redis."""
    kind: str = request.param
    return kind


@pytest.fixture
def web(store: JobStore) -> Iterator[tuple[httpx.Client, VirtualClock]]:
    with server(store=store) as pair:
        yield pair


def challenge(http: httpx.Client, prompt: str = PRICE) -> dict[str, Any]:
    response = http.post("/v2/prompt", json={"prompt": prompt})
    assert response.status_code == 402, response.text
    body: dict[str, Any] = response.json()
    return body


def requirement(http: httpx.Client) -> dict[str, Any]:
    accepts: list[dict[str, Any]] = challenge(http)["accepts"]
    return accepts[0]


def header_for(
    http: httpx.Client, clock: VirtualClock, account: LocalAccount = ALICE, **bend: Any
) -> str:
    return make_payment_header(account, requirement(http), now=clock.now(), **bend)


def send(http: httpx.Client, header: str, prompt: str = PRICE) -> httpx.Response:
    return http.post("/v2/prompt", json={"prompt": prompt}, headers={"X-PAYMENT": header})


def paid(
    http: httpx.Client, clock: VirtualClock, account: LocalAccount = ALICE, prompt: str = PRICE
) -> str:
    """Pay for one prompt; its job id."""
    response = send(http, header_for(http, clock, account), prompt)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def ledger(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/__mock/ledger")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def jobs(http: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = http.get("/__mock/jobs").json()
    return body


def decode_b64_json(value: str) -> Any:
    return json.loads(base64.b64decode(value, validate=True))


def poll(http: httpx.Client, job_id: str, account: LocalAccount = ALICE) -> httpx.Response:
    return http.get(f"/v2/job/{job_id}", headers=sign_job_headers(account, job_id, "status"))


def cancel(http: httpx.Client, job_id: str, account: LocalAccount = ALICE) -> httpx.Response:
    return http.post(
        f"/v2/job/{job_id}/cancel", headers=sign_job_headers(account, job_id, "cancel")
    )


def force(http: httpx.Client, job_id: str, **outcome: Any) -> None:
    response = http.post(f"/__mock/jobs/{job_id}/outcome", json=outcome)
    assert response.status_code == 200, response.text


# -- the challenge -------------------------------------------------------------------


def test_the_402_challenge_field_by_field(web: tuple[httpx.Client, VirtualClock]) -> None:
    http, _ = web
    response = http.post("/v2/prompt", json={"prompt": PRICE})

    assert response.status_code == 402
    assert "x-payment-response" not in response.headers
    body = response.json()
    assert (
        {"x402Version", "error", "accepts"}
        <= set(body)
        <= {
            "x402Version",
            "error",
            "accepts",
            "message",
        }
    )
    assert body["x402Version"] == 1
    assert body["error"] == "X-PAYMENT header is required"
    (accept,) = body["accepts"]
    assert set(accept) >= ZOD_REQUIRED
    assert accept["scheme"] == "exact"
    assert accept["network"] == "base"
    assert accept["maxAmountRequired"] == "100000"
    assert accept["resource"] == f"{BASE_URL}/v2/prompt"
    assert isinstance(accept["description"], str)
    assert isinstance(accept["mimeType"], str)
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", accept["payTo"])
    assert accept["payTo"] == to_checksum_address(accept["payTo"])
    assert type(accept["maxTimeoutSeconds"]) is int
    assert accept["maxTimeoutSeconds"] > 0
    assert accept["asset"] == USDC == to_checksum_address(USDC)
    assert accept["extra"] == {"name": "USD Coin", "version": "2"}
    # Refused before anything was created or charged.
    assert ledger(http)["count"] == 0
    assert jobs(http)["total"] == 0


def test_the_resource_is_the_absolute_url_the_client_called() -> None:
    clock = VirtualClock()
    app = create_app(Settings(seed=1), clock=clock, rng=random.Random(1), store=MemoryStore())
    transport = SyncClockTransport(app, clock)
    with httpx.Client(transport=transport, base_url="http://127.0.0.1:8402") as http:
        assert requirement(http)["resource"] == "http://127.0.0.1:8402/v2/prompt"


@pytest.mark.parametrize("header", ["", None], ids=["empty X-PAYMENT", "no X-PAYMENT"])
def test_an_absent_or_empty_payment_gets_the_challenge(
    web: tuple[httpx.Client, VirtualClock], header: str | None
) -> None:
    http, _ = web
    headers = {} if header is None else {"X-PAYMENT": header}
    response = http.post("/v2/prompt", json={"prompt": PRICE}, headers=headers)
    assert response.status_code == 402
    assert response.json()["error"] == "X-PAYMENT header is required"
    assert response.json()["accepts"] == challenge(http)["accepts"]


def test_payment_terms_set_the_price_and_the_recipient() -> None:
    terms = PaymentTerms(price_atomic=usdc_to_atomic("0.25"), pay_to=MERCHANT)
    with server(Settings(seed=1, payment=terms)) as (http, clock):
        accept = requirement(http)
        assert accept["maxAmountRequired"] == "250000"
        assert accept["payTo"] == to_checksum_address(MERCHANT)

        # The default price, or the default recipient, no longer pays.
        underpaid = send(http, make_payment_header(ALICE, accept, now=clock.now(), value=100_000))
        assert (underpaid.status_code, underpaid.json()["error"]) == (402, R.UNDERPAID)
        default_to = make_payment_header(
            ALICE, accept, now=clock.now(), to="0x" + "00" * 18 + "dead"
        )
        elsewhere = send(http, default_to)
        assert (elsewhere.status_code, elsewhere.json()["error"]) == (402, R.RECIPIENT_MISMATCH)

        accepted = send(http, make_payment_header(ALICE, accept, now=clock.now()))
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["price"] == {"amount": "250000", "asset": USDC}
        summary = ledger(http)
        assert (summary["count"], summary["totalAtomic"], summary["totalUsdc"]) == (
            1,
            "250000",
            "0.25",
        )
        assert summary["entries"][0]["amountAtomic"] == "250000"


# -- a paid prompt -------------------------------------------------------------------


def test_a_valid_payment_creates_the_job_and_charges_the_price_once(
    web: tuple[httpx.Client, VirtualClock],
) -> None:
    http, clock = web
    nonce = bytes(range(32))
    header = header_for(http, clock, nonce=nonce)

    response = send(http, header)

    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"success", "jobId", "status", "message", "price"}
    assert body["success"] is True
    assert body["status"] == "pending"
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["jobId"].startswith("job_")
    assert body["price"] == {"amount": "100000", "asset": USDC}

    receipt = decode_b64_json(response.headers["X-PAYMENT-RESPONSE"])
    transaction = "0x" + keccak(nonce).hex()
    assert receipt == {
        "success": True,
        "transaction": transaction,
        "network": "base",
        "payer": ALICE.address,
    }
    assert re.fullmatch(r"0x[0-9a-f]{64}", receipt["transaction"])

    summary = ledger(http)
    assert (summary["count"], summary["totalAtomic"], summary["totalUsdc"]) == (1, "100000", "0.1")
    assert summary["byPayer"] == {
        ALICE.address: {"count": 1, "totalAtomic": "100000", "totalUsdc": "0.1"}
    }
    (entry,) = summary["entries"]
    assert entry["payer"] == ALICE.address
    assert entry["amountAtomic"] == "100000"
    assert entry["jobId"] == body["jobId"]
    assert entry["prompt"] == PRICE
    assert entry["nonce"] == "0x" + nonce.hex()
    assert entry["transaction"] == transaction
    assert entry["at"] == clock.now()

    # The job exists and belongs to the payer.
    assert poll(http, body["jobId"]).json()["jobId"] == body["jobId"]
    assert jobs(http)["total"] == 1


def test_the_receipt_hash_depends_on_the_nonce_only() -> None:
    def receipt(account: LocalAccount, nonce: bytes, advance: float = 0.0) -> str:
        with server() as (http, clock):
            clock.advance(advance)
            response = send(http, header_for(http, clock, account, nonce=nonce))
            assert response.status_code == 202, response.text
            transaction: str = decode_b64_json(response.headers["X-PAYMENT-RESPONSE"])[
                "transaction"
            ]
            return transaction

    first = receipt(ALICE, b"\x01" * 32)
    assert receipt(BOB, b"\x01" * 32, advance=7.5) == first
    assert receipt(ALICE, b"\x02" * 32) != first


# -- refused payments ----------------------------------------------------------------

Make = Callable[[httpx.Client, VirtualClock], str]


def _bend(**bend: Any) -> Make:
    return lambda http, clock: header_for(http, clock, **bend)


def _b64(raw: bytes) -> Make:
    return lambda http, clock: base64.b64encode(raw).decode()


def _reused(http: httpx.Client, clock: VirtualClock) -> str:
    header = header_for(http, clock)
    assert send(http, header).status_code == 202  # the first use pays
    return header


def _set_auth(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    def edit(payment: dict[str, Any]) -> None:
        payment["payload"]["authorization"][key] = value

    return edit


def _signed_by_bob_as_alice(http: httpx.Client, clock: VirtualClock) -> str:
    return header_for(http, clock, BOB, tamper=_set_auth("from", ALICE.address))


REFUSALS: list[tuple[str, Make, str]] = [
    ("garbage base64", lambda http, clock: "!!not base64!!", R.INVALID_PAYLOAD),
    ("base64 of bad JSON", _b64(b'{"x402Version":1,'), R.INVALID_PAYLOAD),
    ("base64 of a JSON array", _b64(b"[1, 2]"), R.INVALID_PAYLOAD),
    ("x402 version 2", _bend(tamper=lambda p: p.update(x402Version=2)), R.INVALID_X402_VERSION),
    ("wrong scheme", _bend(scheme="upto"), R.INVALID_SCHEME),
    ("wrong network", _bend(network="base-sepolia"), R.INVALID_NETWORK),
    ("underpaid by one unit", _bend(value=99_999), R.UNDERPAID),
    ("wrong payTo", _bend(to="0x" + "12" * 20), R.RECIPIENT_MISMATCH),
    (
        "expired (validBefore == now)",
        lambda http, clock: header_for(http, clock, valid_before=math.floor(clock.now())),
        R.EXPIRED,
    ),
    (
        "not yet valid (validAfter == now + 1)",
        lambda http, clock: header_for(http, clock, valid_after=math.floor(clock.now()) + 1),
        R.NOT_YET_VALID,
    ),
    ("a reused nonce", _reused, R.NONCE_REUSED),
    (
        "value raised after signing",
        _bend(tamper=_set_auth("value", "200000")),
        R.INVALID_SIGNATURE,
    ),
    ("signed by Bob, from says Alice", _signed_by_bob_as_alice, R.INVALID_SIGNATURE),
    (
        "the malleated (high-s) twin of a valid signature",
        _bend(tamper=lambda p: p["payload"].update(signature=malleate(p["payload"]["signature"]))),
        R.INVALID_SIGNATURE,
    ),
    (
        "signature of 64 bytes",
        _bend(tamper=lambda p: p["payload"].update(signature="0x" + "11" * 64)),
        R.INVALID_SIGNATURE,
    ),
]


@pytest.mark.parametrize(
    ("make", "reason"), [(m, r) for _, m, r in REFUSALS], ids=[i for i, _, _ in REFUSALS]
)
def test_each_refused_payment_is_a_402_naming_its_reason_and_charges_nothing(
    web: tuple[httpx.Client, VirtualClock], make: Make, reason: str
) -> None:
    http, clock = web
    header = make(http, clock)
    accepts = challenge(http)["accepts"]
    before = (ledger(http), jobs(http))

    response = send(http, header)

    assert response.status_code == 402, response.text
    body = response.json()
    assert body["error"] == reason
    assert body["x402Version"] == 1
    assert body["accepts"] == accepts  # so a client can pay again
    assert "x-payment-response" not in response.headers
    assert (ledger(http), jobs(http)) == before


BAD_BODIES: list[tuple[str, bytes]] = [
    ("not JSON", b"{prompt"),
    ("a JSON array", b'["What is the price of ETH?"]'),
    ("no prompt", b"{}"),
    ("an empty prompt", b'{"prompt": ""}'),
    ("a blank prompt", b'{"prompt": "   "}'),
    ("a number prompt", b'{"prompt": 42}'),
    ("a prompt of 10001 characters", b'{"prompt": "' + b"x" * 10_001 + b'"}'),
]
V2_ONLY_BAD_BODIES: list[tuple[str, bytes]] = [
    ("walletAddress not a string", b'{"prompt": "hi", "walletAddress": 7}'),
    ("xmtp not a boolean", b'{"prompt": "hi", "xmtp": "yes"}'),
]


@pytest.mark.parametrize(
    "body",
    [b for _, b in BAD_BODIES + V2_ONLY_BAD_BODIES],
    ids=[i for i, _ in BAD_BODIES + V2_ONLY_BAD_BODIES],
)
def test_a_bad_body_with_a_valid_payment_is_a_400_and_leaves_the_payment_unspent(
    web: tuple[httpx.Client, VirtualClock], body: bytes
) -> None:
    http, clock = web
    header = header_for(http, clock)
    before = (ledger(http), jobs(http))

    response = http.post(
        "/v2/prompt",
        content=body,
        headers={"X-PAYMENT": header, "Content-Type": "application/json"},
    )

    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error", "message"}
    assert "x-payment-response" not in response.headers
    assert (ledger(http), jobs(http)) == before
    # Nothing was settled, so the same authorization still pays for a good body.
    assert send(http, header).status_code == 202


@pytest.mark.parametrize("body", [b for _, b in BAD_BODIES], ids=[i for i, _ in BAD_BODIES])
def test_a_bad_body_gets_the_same_400_as_the_api_key_prompt(
    web: tuple[httpx.Client, VirtualClock], body: bytes
) -> None:
    http, clock = web
    json_type = {"Content-Type": "application/json"}
    agent = http.post("/agent/prompt", content=body, headers={"X-API-Key": KEY, **json_type})
    v2 = http.post(
        "/v2/prompt", content=body, headers={"X-PAYMENT": header_for(http, clock), **json_type}
    )
    assert (v2.status_code, v2.json()) == (agent.status_code, agent.json())


# -- job auth ------------------------------------------------------------------------

Headers = Callable[[str, Action], dict[str, str]]


def _without(name: str) -> Headers:
    def make(job_id: str, action: Action) -> dict[str, str]:
        headers = sign_job_headers(ALICE, job_id, action)
        del headers[name]
        return headers

    return make


def _replace(name: str, value: str) -> Headers:
    return lambda job_id, action: {**sign_job_headers(ALICE, job_id, action), name: value}


def _other_action(job_id: str, action: Action) -> dict[str, str]:
    return sign_job_headers(ALICE, job_id, "cancel" if action == "status" else "status")


def _lowercase_message(job_id: str, action: Action) -> dict[str, str]:
    message = sign_job_headers(ALICE, job_id, action)["x-message"].lower()
    signature = ALICE.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    return {"wallet-address": ALICE.address, "x-signature": signature, "x-message": message}


def _signed_by_bob(job_id: str, action: Action) -> dict[str, str]:
    return {**sign_job_headers(BOB, job_id, action), "wallet-address": ALICE.address}


def _signature_of_another_text(job_id: str, action: Action) -> dict[str, str]:
    headers = sign_job_headers(ALICE, job_id, action)
    signature = ALICE.sign_message(encode_defunct(text="something else")).signature.to_0x_hex()
    return {**headers, "x-signature": signature}


JOB_AUTH_REFUSALS: list[tuple[str, Headers]] = [
    ("no wallet-address", _without("wallet-address")),
    ("no x-signature", _without("x-signature")),
    ("no x-message", _without("x-message")),
    ("no headers at all", lambda job_id, action: {}),
    ("wallet-address not an address", _replace("wallet-address", "alice.eth")),
    ("x-signature not 65 bytes", _replace("x-signature", "0x" + "11" * 64)),
    ("the other action's message", _other_action),
    ("a lowercase message", _lowercase_message),
    ("a message for another job id", lambda job_id, a: sign_job_headers(ALICE, "job_OTHER", a)),
    ("signed by another wallet", _signed_by_bob),
    ("a signature of another text", _signature_of_another_text),
]


@pytest.mark.parametrize("action", ["status", "cancel"])
@pytest.mark.parametrize(
    "make", [m for _, m in JOB_AUTH_REFUSALS], ids=[i for i, _ in JOB_AUTH_REFUSALS]
)
def test_bad_job_auth_is_a_401_and_changes_nothing(
    web: tuple[httpx.Client, VirtualClock], make: Headers, action: Action
) -> None:
    http, clock = web
    job_id = paid(http, clock)
    path = f"/v2/job/{job_id}" + ("/cancel" if action == "cancel" else "")

    response = http.request(
        "GET" if action == "status" else "POST", path, headers=make(job_id, action)
    )

    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "Authentication required"
    assert body["message"]
    owner_view = poll(http, job_id).json()
    assert (owner_view["status"], owner_view["cancellable"]) == ("pending", True)


@pytest.mark.parametrize("action", ["status", "cancel"])
def test_a_wallet_that_does_not_own_the_job_gets_404_like_a_foreign_key(
    web: tuple[httpx.Client, VirtualClock], action: Action
) -> None:
    http, clock = web
    job_id = paid(http, clock)
    call = poll if action == "status" else cancel

    foreign = call(http, job_id, BOB)
    missing = call(http, "job_NOPE", BOB)

    assert (foreign.status_code, foreign.json()) == (
        404,
        {"error": "Job not found", "message": f"No job found with ID {job_id}"},
    )
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "Job not found", "message": "No job found with ID job_NOPE"},
    )
    assert poll(http, job_id).json()["status"] == "pending"


def test_the_two_flavours_never_see_each_others_jobs(
    web: tuple[httpx.Client, VirtualClock],
) -> None:
    http, clock = web
    wallet_job = paid(http, clock)
    key_job = http.post("/agent/prompt", json={"prompt": PRICE}, headers={"X-API-Key": KEY})
    key_job_id = key_job.json()["jobId"]

    assert http.get(f"/agent/job/{wallet_job}", headers={"X-API-Key": KEY}).status_code == 404
    assert poll(http, key_job_id).status_code == 404
    assert cancel(http, key_job_id).status_code == 404


def _walk(
    http: httpx.Client, clock: VirtualClock, fetch: dict[str, Callable[[], dict[str, Any]]]
) -> dict[str, dict[str, set[frozenset[str]]]]:
    """Poll each job every 0.5 s for 30 s: per flavour, per status, the field sets seen."""
    seen: dict[str, dict[str, set[frozenset[str]]]] = {name: {} for name in fetch}
    for _ in range(60):
        for name, get in fetch.items():
            body = get()
            seen[name].setdefault(body["status"], set()).add(frozenset(body))
        clock.advance(0.5)
    return seen


@pytest.mark.parametrize("final", ["completed", "failed", "cancelled"])
def test_the_owner_sees_the_same_job_shapes_as_the_api_key_flavour(
    web: tuple[httpx.Client, VirtualClock], final: str
) -> None:
    http, clock = web
    key = {"X-API-Key": KEY}
    agent_id = http.post("/agent/prompt", json={"prompt": SWAP}, headers=key).json()["jobId"]
    wallet_id = paid(http, clock, prompt=SWAP)
    if final != "cancelled":
        outcome: dict[str, Any] = {"outcome": final, "finish_in": 20}
        if final == "failed":
            outcome["error"] = "no liquidity"
        force(http, agent_id, **outcome)
        force(http, wallet_id, **outcome)
    signed = sign_job_headers(ALICE, wallet_id, "status")  # the SDK re-sends one signature
    fetch = {
        "agent": lambda: http.get(f"/agent/job/{agent_id}", headers=key).json(),
        "v2": lambda: http.get(f"/v2/job/{wallet_id}", headers=signed).json(),
    }

    if final == "cancelled":
        # Cancel both once both are processing, then keep looking.
        seen = _walk_until_processing(http, clock, fetch)
        agent_cancel = http.post(f"/agent/job/{agent_id}/cancel", headers=key)
        wallet_cancel = cancel(http, wallet_id)
        assert wallet_cancel.status_code == agent_cancel.status_code == 200
        assert set(wallet_cancel.json()) == set(agent_cancel.json())
        assert wallet_cancel.json()["status"] == "cancelled"
        after = _walk(http, clock, fetch)
        for name in seen:
            for status, shapes in after[name].items():
                seen[name].setdefault(status, set()).update(shapes)
    else:
        seen = _walk(http, clock, fetch)

    assert set(seen["v2"]) == {"pending", "processing", final}
    assert seen["v2"] == seen["agent"]
    for shapes in seen["v2"].values():
        assert len(shapes) == 1  # one field set per status


def _walk_until_processing(
    http: httpx.Client, clock: VirtualClock, fetch: dict[str, Callable[[], dict[str, Any]]]
) -> dict[str, dict[str, set[frozenset[str]]]]:
    seen: dict[str, dict[str, set[frozenset[str]]]] = {name: {} for name in fetch}
    for _ in range(200):
        bodies = {name: get() for name, get in fetch.items()}
        for name, body in bodies.items():
            seen[name].setdefault(body["status"], set()).add(frozenset(body))
        if all(body["status"] == "processing" for body in bodies.values()):
            return seen
        clock.advance(0.5)
    raise AssertionError(f"never both processing: {bodies}")


# -- cost ----------------------------------------------------------------------------


def _by_status(summary: dict[str, Any]) -> dict[str, int]:
    return {status: row["count"] for status, row in summary["byStatus"].items() if row["count"]}


def test_failed_and_cancelled_jobs_still_cost_the_price(
    web: tuple[httpx.Client, VirtualClock],
) -> None:
    http, clock = web
    done = paid(http, clock)
    failed = paid(http, clock, prompt="Check my balance")
    cancelled = paid(http, clock, prompt="Swap 1 ETH for USDC")
    force(http, done, outcome="completed", finish_in=10)
    force(http, failed, outcome="failed", error="no liquidity", finish_in=10)
    assert _by_status(ledger(http)) == {"pending": 3}

    assert cancel(http, cancelled).json()["status"] == "cancelled"
    clock.advance(10)

    summary = ledger(http)
    assert _by_status(summary) == {"completed": 1, "failed": 1, "cancelled": 1}
    for status in ("completed", "failed", "cancelled"):
        assert summary["byStatus"][status]["totalAtomic"] == "100000"
    assert (summary["count"], summary["totalAtomic"], summary["totalUsdc"]) == (3, "300000", "0.3")
    assert summary["byPayer"][ALICE.address]["totalAtomic"] == "300000"
    # Polling and cancelling are free: three prompts, three entries.
    assert [e["jobId"] for e in summary["entries"]] == [done, failed, cancelled]


@pytest.mark.parametrize(
    ("gap", "flagged"), [(0.0, True), (59.5, True), (60.0, True), (60.5, False), (600.0, False)]
)
def test_a_repeat_paid_prompt_within_60_simulated_seconds_is_flagged(
    web: tuple[httpx.Client, VirtualClock], gap: float, flagged: bool
) -> None:
    http, clock = web
    first = paid(http, clock)
    clock.advance(gap)
    second = paid(http, clock)

    summary = ledger(http)

    if flagged:
        (group,) = summary["duplicates"]
        assert (group["payer"], group["prompt"], group["count"]) == (ALICE.address, PRICE, 2)
        assert group["jobIds"] == [first, second]
        assert group["extraAtomic"] == "100000"
        assert summary["duplicateCount"] == 1
    else:
        assert summary["duplicates"] == []
        assert summary["duplicateCount"] == 0
    assert summary["totalAtomic"] == "200000"  # flagged or not, both were charged


def test_duplicates_need_the_same_payer_and_the_same_prompt(
    web: tuple[httpx.Client, VirtualClock],
) -> None:
    http, clock = web
    paid(http, clock, ALICE, PRICE)
    paid(http, clock, BOB, PRICE)
    paid(http, clock, ALICE, "Check my balance")
    assert ledger(http)["duplicates"] == []


# -- properties ----------------------------------------------------------------------

NONCES = [bytes([i + 1]) * 32 for i in range(3)]
PAYERS = [ALICE, BOB]
#: Payments refused at any time: the reason, and how the header is bent.
FORGED: dict[str, tuple[str, dict[str, Any]]] = {
    "underpaid": (R.UNDERPAID, {"value": 99_999}),
    "wrong payTo": (R.RECIPIENT_MISMATCH, {"to": "0x" + "12" * 20}),
    "bad signature": (R.INVALID_SIGNATURE, {"tamper": _set_auth("value", "100001")}),
    "wrong network": (R.INVALID_NETWORK, {"network": "base-sepolia"}),
}
#: Sound payments whose window does not hold now: the reason, and (validAfter, validBefore)
#: from now. A payment not yet valid pays when replayed inside its window.
MISTIMED: dict[str, tuple[str, Callable[[int], tuple[int, int]]]] = {
    "expired": (R.EXPIRED, lambda now: (now - 600, now)),
    "not yet valid": (R.NOT_YET_VALID, lambda now: (now + 1, now + 60)),
}
STEPS = st.one_of(
    st.tuples(st.just("pay"), st.integers(0, 1), st.integers(0, 2)),
    st.tuples(
        st.just("forged"), st.sampled_from(sorted(FORGED)), st.integers(0, 1), st.integers(0, 2)
    ),
    st.tuples(
        st.just("mistimed"),
        st.sampled_from(sorted(MISTIMED)),
        st.integers(0, 1),
        st.integers(0, 2),
    ),
    st.tuples(st.just("replay"), st.integers(0, 15)),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 30.0, 61.0])),
)


@dataclasses.dataclass(frozen=True)
class Sent:
    header: str
    sound: bool  # signed correctly, to the right recipient, for enough, on the right network
    valid_after: int
    valid_before: int
    nonce: str
    payer: str


def _new_payment(step: tuple[Any, ...], accept: dict[str, Any], now: float) -> tuple[Sent, str]:
    """A header for a pay/forged/mistimed step, and the reason it must be refused with."""
    kind, account, nonce_bytes = step[0], PAYERS[step[-2]], NONCES[step[-1]]
    after, before = math.floor(now) - 600, math.floor(now) + accept["maxTimeoutSeconds"]
    bend: dict[str, Any] = {}
    reason: str = R.NONCE_REUSED
    if kind == "forged":
        reason, bend = FORGED[step[1]]
    elif kind == "mistimed":
        reason, window = MISTIMED[step[1]]
        after, before = window(math.floor(now))
        bend = {"valid_after": after, "valid_before": before}
    header = make_payment_header(account, accept, now=now, nonce=nonce_bytes, **bend)
    sent = Sent(header, kind != "forged", after, before, "0x" + nonce_bytes.hex(), account.address)
    return sent, reason


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEPS, max_size=10))
def test_the_ledger_charges_exactly_the_accepted_prompts(steps: list[tuple[Any, ...]]) -> None:
    """A model beside the server: a header pays iff it is sound, inside its validity window
    now, and its nonce was never accepted (a refused header spends nothing)."""
    with server() as (http, clock):
        accept = requirement(http)
        sent: list[Sent] = []
        used: list[str] = []
        payers: list[str] = []
        for step in steps:
            now = clock.now()
            if step[0] == "advance":
                clock.advance(step[1])
                continue
            reason: str | None = None  # a replay's reason depends on the checks' order
            if step[0] == "replay":
                if not sent:
                    continue
                payment = sent[step[1] % len(sent)]
            else:
                payment, reason = _new_payment(step, accept, now)
                sent.append(payment)
            accepted = (
                payment.sound
                and payment.valid_after <= now < payment.valid_before
                and payment.nonce not in used
            )

            response = send(http, payment.header)

            assert response.status_code == (202 if accepted else 402), (step, response.text)
            if accepted:
                used.append(payment.nonce)
                payers.append(payment.payer)
            elif reason is not None:
                assert response.json()["error"] == reason

        summary = ledger(http)
        nonces = [entry["nonce"] for entry in summary["entries"]]
        assert nonces == used
        assert len(set(nonces)) == len(nonces)
        assert summary["count"] == len(used)
        assert summary["totalAtomic"] == str(100_000 * len(used))
        assert [entry["payer"] for entry in summary["entries"]] == payers
        assert jobs(http)["total"] == len(used)


async def _concurrently(
    headers: list[str], store: JobStore
) -> tuple[list[int], dict[str, Any], int]:
    clock = VirtualClock()
    app = create_app(Settings(seed=1), clock=clock, rng=random.Random(1), store=store)
    transport = AsyncClockTransport(app, clock)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        responses = await asyncio.gather(
            *(
                http.post("/v2/prompt", json={"prompt": PRICE}, headers={"X-PAYMENT": header})
                for header in headers
            )
        )
        summary = (await http.get("/__mock/ledger")).json()
        total = (await http.get("/__mock/jobs")).json()["total"]
    return [r.status_code for r in responses], summary, total


# A fresh store per example (new_store): the function-scoped fixtures are only its kind.
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(copies=st.integers(2, 10), others=st.integers(0, 3), data=st.data())
def test_one_header_sent_concurrently_pays_exactly_once(
    copies: int, others: int, data: st.DataObject, store_kind: str, request: pytest.FixtureRequest
) -> None:
    store = new_store(store_kind, request)
    with server() as (http, _):
        accept = requirement(http)
    now = DEFAULT_EPOCH  # where the VirtualClock of _concurrently starts
    twin = make_payment_header(ALICE, accept, now=now, nonce=b"\x07" * 32)
    distinct = [
        make_payment_header(BOB, accept, now=now, nonce=bytes([0x10 + i]) * 32)
        for i in range(others)
    ]
    headers = data.draw(st.permutations([twin] * copies + distinct))

    statuses, summary, total = asyncio.run(_concurrently(headers, store))

    twin_statuses = [s for s, h in zip(statuses, headers, strict=True) if h == twin]
    assert sorted(twin_statuses) == [202] + [402] * (copies - 1)
    assert all(s == 202 for s, h in zip(statuses, headers, strict=True) if h != twin)
    assert summary["count"] == total == 1 + others
    assert summary["totalAtomic"] == str(100_000 * (1 + others))
    assert [e["nonce"] for e in summary["entries"]].count("0x" + "07" * 32) == 1


def test_the_journal_names_the_wallet_of_each_request_verified_or_claimed(
    web: tuple[httpx.Client, VirtualClock],
) -> None:
    http, clock = web
    job_id = paid(http, clock, ALICE)
    assert poll(http, job_id, ALICE).status_code == 200
    expired = header_for(http, clock, BOB, valid_before=math.floor(clock.now()) - 1)
    assert send(http, expired).status_code == 402
    assert poll(http, job_id, BOB).status_code == 404  # signed, but not the owner

    entries = http.get("/__mock/journal", params={"path": "/v2/*"}).json()["entries"]
    seen = [(e["method"], e["status"], e["owner"], e["jobId"]) for e in entries]
    assert seen == [
        ("POST", 402, None, None),  # the challenge: no payment, nobody claimed
        ("POST", 202, ALICE.address, job_id),
        ("GET", 200, ALICE.address, job_id),
        ("POST", 402, None, None),  # the challenge header_for asked for
        ("POST", 402, BOB.address, None),  # refused, but it names its payer
        ("GET", 404, BOB.address, job_id),
    ]


def test_a_wallet_rule_matches_the_payer_a_payment_claims_before_verifying_it(
    web: tuple[httpx.Client, VirtualClock],
) -> None:
    http, clock = web
    rule = {
        "match": {"wallet": BOB.address.lower(), "path": "/v2/prompt"},
        "action": {"respond": {"status": 503, "body": {"error": "down", "message": "bob"}}},
    }
    assert http.post("/__mock/rules", json=rule).status_code == 201
    assert send(http, header_for(http, clock, BOB)).status_code == 503
    assert send(http, header_for(http, clock, ALICE)).status_code == 202
