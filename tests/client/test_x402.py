"""x402: paying a 402 challenge by signing locally, the cap, and signed job requests."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from bankr_client import (
    USDC_BASE,
    ConfigError,
    JobStatusName,
    PaymentRequiredError,
    Price,
    RetryPolicy,
    ServerError,
    SystemClock,
    X402Auth,
)
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from .fakeapi import Answer, Fail, FakeBankr, RecordingClock, Step, drive, job

KEY = "0x" + "11" * 32
PAYER = Account.from_key(KEY).address
PAY_TO = "0x000000000000000000000000000000000000dEaD"
NONCE = bytes(range(32))
SEPOLIA_USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


def requirement(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "scheme": "exact",
        "network": "base",
        "maxAmountRequired": "100000",
        "resource": "http://bankr.test/v2/prompt",
        "description": "Bankr agent prompt",
        "mimeType": "application/json",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "asset": USDC_BASE,
        "extra": {"name": "USD Coin", "version": "2"},
    }
    item.update(overrides)
    return item


def challenge(*accepts: dict[str, Any], version: int = 1) -> Answer:
    body = {
        "x402Version": version,
        "error": "X-PAYMENT header is required",
        "accepts": list(accepts) or [requirement()],
    }
    return Answer(402, body)


def paid(job_id: str = "job_1") -> Answer:
    return Answer(
        200,
        {
            "success": True,
            "jobId": job_id,
            "status": "pending",
            "message": "Prompt submitted successfully. Use the jobId to check status.",
            "price": {"amount": "100000", "asset": USDC_BASE},
        },
    )


def auth(**kwargs: Any) -> X402Auth:
    return X402Auth(KEY, nonce=lambda: NONCE, **kwargs)


def decode(request: httpx.Request) -> dict[str, Any]:
    payment: dict[str, Any] = json.loads(base64.b64decode(request.headers["X-PAYMENT"]))
    return payment


def recover_payer(payment: dict[str, Any], *, chain_id: int, asset: str) -> str:
    """Rebuild the EIP-712 message by hand (not with the client's helper) and recover."""
    a = payment["payload"]["authorization"]
    typed = {
        "types": {
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
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": "USD Coin",
            "version": "2",
            "chainId": chain_id,
            "verifyingContract": asset,
        },
        "message": {
            "from": a["from"],
            "to": a["to"],
            "value": int(a["value"]),
            "validAfter": int(a["validAfter"]),
            "validBefore": int(a["validBefore"]),
            "nonce": bytes.fromhex(a["nonce"][2:]),
        },
    }
    signable = encode_typed_data(full_message=typed)
    recovered: str = Account.recover_message(signable, signature=payment["payload"]["signature"])
    return recovered


def test_a_402_is_paid_once_by_a_locally_signed_authorization(flavour: str):
    clock = RecordingClock(start=1_736_937_000.0)
    fake = FakeBankr(clock, prompt=[challenge(), paid()])
    result = drive(flavour, fake, lambda c: c.prompt("what is the price of ETH?"), auth=auth())
    first, second = (call.request for call in fake.of("prompt"))
    for request in (first, second):
        assert request.url.path == "/v2/prompt"
        assert json.loads(request.content) == {"prompt": "what is the price of ETH?"}
        assert "X-API-Key" not in request.headers
    assert "X-PAYMENT" not in first.headers
    payment = decode(second)
    assert payment["x402Version"] == 1
    assert (payment["scheme"], payment["network"]) == ("exact", "base")
    assert payment["payload"]["authorization"] == {
        "from": PAYER,
        "to": PAY_TO,
        "value": "100000",
        "validAfter": str(1_736_937_000 - 600),
        "validBefore": str(1_736_937_000 + 60),
        "nonce": "0x" + NONCE.hex(),
    }
    assert payment["payload"]["signature"].startswith("0x")
    assert len(payment["payload"]["signature"]) == 2 + 65 * 2
    assert recover_payer(payment, chain_id=8453, asset=USDC_BASE) == PAYER
    assert result.job_id == "job_1"
    assert result.thread_id is None
    assert result.price == Price("100000", USDC_BASE)


def test_the_signature_is_bound_to_the_domain(flavour: str):
    clock = RecordingClock(start=1_736_937_000.0)
    fake = FakeBankr(clock, prompt=[challenge(), paid()])
    drive(flavour, fake, lambda c: c.prompt("hi"), auth=auth())
    payment = decode(fake.of("prompt")[1].request)
    assert recover_payer(payment, chain_id=84532, asset=USDC_BASE) != PAYER


def test_base_sepolia_uses_its_chain_id(flavour: str):
    clock = RecordingClock(start=1_736_937_000.0)
    sepolia = requirement(network="base-sepolia", asset=SEPOLIA_USDC)
    fake = FakeBankr(clock, prompt=[challenge(sepolia), paid()])
    drive(flavour, fake, lambda c: c.prompt("hi"), auth=auth())
    payment = decode(fake.of("prompt")[1].request)
    assert payment["network"] == "base-sepolia"
    assert recover_payer(payment, chain_id=84532, asset=SEPOLIA_USDC) == PAYER


def test_usdc_is_preferred_and_unpayable_entries_are_skipped(flavour: str):
    clock = RecordingClock(start=1_736_937_000.0)
    entries = [
        requirement(network="solana", payTo="So1ana", asset="So1ana"),
        requirement(asset="0x" + "22" * 20, maxAmountRequired="5"),
        requirement(maxAmountRequired="100000"),
    ]
    fake = FakeBankr(clock, prompt=[challenge(*entries), paid()])
    drive(flavour, fake, lambda c: c.prompt("hi"), auth=auth())
    payment = decode(fake.of("prompt")[1].request)
    assert payment["payload"]["authorization"]["value"] == "100000"
    assert recover_payer(payment, chain_id=8453, asset=USDC_BASE) == PAYER


@pytest.mark.parametrize(
    "step",
    [
        challenge(requirement(maxAmountRequired="1000001")),
        challenge(requirement(network="solana")),
        challenge(requirement(extra=None)),
        challenge(requirement(extra={"name": "USD Coin"})),
        challenge(requirement(scheme="upto")),
        challenge(requirement(payTo="nobody")),
        challenge(requirement(maxAmountRequired="0.1")),
        challenge(version=2),
        Answer(402, {"error": "Payment required"}),
        Answer(402, content=b"pay up"),
    ],
)
def test_unpayable_challenges_raise_without_paying(flavour: str, step: Step):
    clock = RecordingClock(start=1_736_937_000.0)
    signed: list[int] = []

    def nonce() -> bytes:
        signed.append(1)
        return NONCE

    fake = FakeBankr(clock, prompt=[step, paid()])
    with pytest.raises(PaymentRequiredError) as info:
        drive(flavour, fake, lambda c: c.prompt("hi"), auth=X402Auth(KEY, nonce=nonce))
    assert len(fake.of("prompt")) == 1
    assert signed == []
    assert info.value.status_code == 402


def test_the_cap_is_inclusive_and_configurable(flavour: str):
    clock = RecordingClock(start=1_736_937_000.0)
    at_cap = challenge(requirement(maxAmountRequired="1000000"))
    fake = FakeBankr(clock, prompt=[at_cap, paid()])
    drive(flavour, fake, lambda c: c.prompt("hi"), auth=auth())
    assert len(fake.of("prompt")) == 2
    fake = FakeBankr(clock, prompt=[challenge(), paid()])
    with pytest.raises(PaymentRequiredError, match="exceeds the cap of 50000"):
        drive(flavour, fake, lambda c: c.prompt("hi"), auth=auth(max_payment_usdc=0.05))
    assert len(fake.of("prompt")) == 1


def test_a_second_402_after_paying_is_final(flavour: str):
    clock = RecordingClock(start=1_736_937_000.0)
    refused = Answer(402, {"x402Version": 1, "error": "insufficient_funds", "accepts": []})
    fake = FakeBankr(clock, prompt=[challenge(), refused, paid()])
    with pytest.raises(PaymentRequiredError) as info:
        drive(flavour, fake, lambda c: c.prompt("hi"), auth=auth())
    assert info.value.error == "insufficient_funds"
    assert len(fake.of("prompt")) == 2


def test_an_unsent_paid_resend_reuses_the_same_payment(flavour: str):
    clock = RecordingClock(start=1_736_937_000.0)
    count: list[int] = []

    def nonce() -> bytes:
        count.append(1)
        return NONCE

    fake = FakeBankr(clock, prompt=[challenge(), Fail(httpx.ConnectError), paid()])
    drive(flavour, fake, lambda c: c.prompt("hi"), auth=X402Auth(KEY, nonce=nonce))
    calls = fake.of("prompt")
    assert len(calls) == 3
    assert calls[1].request.headers["X-PAYMENT"] == calls[2].request.headers["X-PAYMENT"]
    assert count == [1]


def test_a_paid_resend_that_may_have_been_accepted_is_not_repeated(flavour: str):
    clock = RecordingClock(start=1_736_937_000.0)
    fake = FakeBankr(clock, prompt=[challenge(), Answer(500, {"error": "boom"}), paid()])
    with pytest.raises(ServerError):
        drive(flavour, fake, lambda c: c.prompt("hi"), auth=auth(), retry=RetryPolicy())
    assert len(fake.of("prompt")) == 2


def test_the_validity_window_uses_explicit_now_over_the_clock(flavour: str):
    clock = RecordingClock(start=1_736_937_000.0)
    fake = FakeBankr(clock, prompt=[challenge(), paid()])
    drive(flavour, fake, lambda c: c.prompt("hi"), auth=auth(now=lambda: 1_800_000_000.5))
    window = decode(fake.of("prompt")[1].request)["payload"]["authorization"]
    assert (window["validAfter"], window["validBefore"]) == ("1799999400", "1800000060")


def test_the_default_clock_signs_with_wall_time():
    seen: list[httpx.Request] = []
    steps = [challenge().response(), paid().response()]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return steps.pop(0)

    from bankr_client import BankrClient

    transport = httpx.MockTransport(handler)
    clock = SystemClock()  # explicit, but still monotonic: never used for the window
    with BankrClient("http://x", auth=auth(), transport=transport, clock=clock) as client:
        before = time.time()
        client.prompt("hi")
        after = time.time()
    window = decode(seen[1])["payload"]["authorization"]
    assert int(before) - 600 <= int(window["validAfter"]) <= int(after) - 600


def test_job_requests_are_signed_by_the_payer(flavour: str):
    clock = RecordingClock()
    fake = FakeBankr(clock, status=[job("completed")], cancel=[job("cancelled")])

    def both(client: Any) -> Any:
        if flavour == "sync":
            return client.get_job_status("job_1"), client.cancel_job("job_1")

        async def run() -> Any:
            return await client.get_job_status("job_1"), await client.cancel_job("job_1")

        return run()

    status, cancelled = drive(flavour, fake, both, auth=auth())
    assert status.status is JobStatusName.COMPLETED
    assert cancelled.status is JobStatusName.CANCELLED
    get, cancel = fake.calls
    assert (get.request.method, get.request.url.path) == ("GET", "/v2/job/job_1")
    assert (cancel.request.method, cancel.request.url.path) == ("POST", "/v2/job/job_1/cancel")
    for call, message in ((get, "Get job status for job_1"), (cancel, "Cancel job job_1")):
        headers = call.request.headers
        assert headers["wallet-address"] == PAYER
        assert headers["x-message"] == message
        signer = Account.recover_message(
            encode_defunct(text=message), signature=headers["x-signature"]
        )
        assert signer == PAYER
        assert "X-API-Key" not in headers


def test_prompt_and_wait_pays_then_polls_v2(flavour: str):
    clock = RecordingClock(start=1_736_937_000.0)
    fake = FakeBankr(
        clock,
        prompt=[challenge(), paid("job_7")],
        status=[job("pending", "job_7"), job("completed", "job_7")],
    )
    result = drive(flavour, fake, lambda c: c.prompt_and_wait("hi"), auth=auth())
    assert result.status is JobStatusName.COMPLETED
    assert [c.request.url.path for c in fake.of("status")] == ["/v2/job/job_7"] * 2


def test_a_context_wallet_goes_into_body_and_header(flavour: str):
    clock = RecordingClock(start=1_736_937_000.0)
    wallet = "0x" + "ab" * 20
    fake = FakeBankr(clock, prompt=[paid()])
    drive(flavour, fake, lambda c: c.prompt("hi"), auth=auth(wallet_address=wallet))
    request = fake.of("prompt")[0].request
    assert json.loads(request.content) == {"prompt": "hi", "walletAddress": wallet}
    assert request.headers["wallet-address"] == wallet


def test_threads_are_refused_before_any_request(flavour: str):
    fake = FakeBankr(RecordingClock())
    with pytest.raises(ConfigError, match="no threads"):
        drive(flavour, fake, lambda c: c.prompt("hi", thread_id="thr_1"), auth=auth())
    assert fake.calls == []


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("0x1234",), {}),
        (("not a key",), {}),
        ((KEY, -1), {}),
        ((KEY, "lots"), {}),
        ((KEY,), {"wallet_address": "me"}),
    ],
)
def test_bad_x402_settings_are_config_errors(args: tuple[Any, ...], kwargs: dict[str, Any]):
    with pytest.raises(ConfigError):
        X402Auth(*args, **kwargs)


def test_the_key_never_shows():
    assert KEY[2:] not in repr(auth())
    assert PAYER in repr(auth())
    assert X402Auth(KEY, "0.5").max_amount == 500_000
