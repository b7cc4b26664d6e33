"""The reference client paying with ``X402Auth`` on ``MockbankrEnv``, on virtual time.

The same scenarios as with an API key (``test_client_on_env.py``), run with each auth: a
scenario must end the same way on ``/v2/*`` as on ``/agent/*``. With x402, the ledger must
also show exactly one 100000 entry from the client's wallet per prompt, whatever happened to
the job, and a payment the client refuses (or the server refuses) must charge nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bankr_client import (
    AsyncBankrClient,
    JobFailedError,
    NotFoundError,
    PaymentRequiredError,
    PollAttemptsExceededError,
    PollTimeoutError,
    X402Auth,
)

from mockbankr import Settings
from mockbankr.money import PaymentTerms
from mockbankr.testing import MockbankrEnv
from mockbankr.x402 import PaymentReason

PRICE = "What is the price of ETH?"
STUCK = {"match": {"prompt": "stuck"}, "action": {"job": {"outcome": "stuck"}}}
FAIL = {
    "match": {"prompt": "price"},
    "action": {"job": {"outcome": "failed", "error": "no liquidity"}},
}
#: Development keys: never hold anything real.
ALICE_KEY = "0x" + "a1" * 32
BOB_KEY = "0x" + "b2" * 32
ALICE = X402Auth(ALICE_KEY).address
FLAVOURS = ["api_key", "x402"]


def client(env: MockbankrEnv, flavour: str, key: str = ALICE_KEY) -> AsyncBankrClient:
    if flavour == "x402":
        return env.async_client(auth=X402Auth(key))
    return env.async_client()


async def get(env: MockbankrEnv, url: str, **params: str) -> Any:
    response = await env.http.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def journal(env: MockbankrEnv, **filters: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (await get(env, "/__mock/journal", **filters))["entries"]
    return entries


def job_path(flavour: str) -> str:
    return "/v2/job/*" if flavour == "x402" else "/agent/job/*"


async def assert_charged(
    env: MockbankrEnv, flavour: str, job_ids: list[str | None]
) -> dict[str, Any]:
    """One 100000 entry from Alice per paid prompt (none with an API key); the summary."""
    summary: dict[str, Any] = await get(env, "/__mock/ledger")
    if flavour == "api_key":
        assert summary["count"] == 0
        return summary
    assert [e["jobId"] for e in summary["entries"]] == job_ids
    assert {(e["payer"], e["amountAtomic"]) for e in summary["entries"]} <= {(ALICE, "100000")}
    assert summary["totalAtomic"] == str(100_000 * len(job_ids))
    return summary


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_prompt_and_wait_completes(flavour: str) -> None:
    async with MockbankrEnv(seed=1) as env:
        bankr = client(env, flavour)
        t0 = env.clock.now()

        job = await bankr.prompt_and_wait(PRICE)

        assert job.status == "completed"
        assert job.response
        assert job.processing_time is not None
        assert 2000 <= job.processing_time <= 5000
        assert env.clock.now() - t0 - job.processing_time / 1000 < 2.0
        summary = await assert_charged(env, flavour, [job.job_id])
        if flavour == "x402":
            assert summary["byStatus"]["completed"]["count"] == 1
            # Paid once: the unpaid try and the paid resend, nothing more.
            prompts = await journal(env, method="POST", path="/v2/prompt")
            assert [e["status"] for e in prompts] == [402, 202]
        await bankr.aclose()


async def _scenario(flavour: str) -> tuple[Any, ...]:
    async with MockbankrEnv(seed=4) as env:
        bankr = client(env, flavour)
        job = await bankr.prompt_and_wait("Swap 10 USDC for ETH", interval=1.5)
        polls = await journal(env, method="GET", path=job_path(flavour))
        await bankr.aclose()
        return (
            job.job_id,
            job.status,
            job.response,
            job.error,
            job.processing_time,
            env.clock.now(),
            len(polls),
        )


@pytest.mark.anyio
async def test_both_auths_end_a_scenario_identically() -> None:
    # Same seed, same prompts: the same job, finished at the same instant, after as many polls.
    assert await _scenario("x402") == await _scenario("api_key")


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_300_second_poll_timeout_ends_at_the_deadline_and_pays_once(flavour: str) -> None:
    async with MockbankrEnv(seed=1) as env:
        await env.http.post("/__mock/rules", json=STUCK)
        bankr = client(env, flavour)
        t0 = env.clock.now()

        with pytest.raises(PollTimeoutError) as caught:
            await bankr.prompt_and_wait("stuck price", timeout=300, max_attempts=1000)

        assert env.clock.now() - t0 == pytest.approx(300)
        assert caught.value.last_status is not None
        assert caught.value.last_status.status == "processing"
        assert len(await journal(env, method="GET", path=job_path(flavour))) > 100
        await assert_charged(env, flavour, [caught.value.job_id])
        await bankr.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_max_attempts_counts_status_requests(flavour: str) -> None:
    async with MockbankrEnv(seed=1) as env:
        await env.http.post("/__mock/rules", json=STUCK)
        bankr = client(env, flavour)

        with pytest.raises(PollAttemptsExceededError) as caught:
            await bankr.prompt_and_wait("stuck price", max_attempts=7)

        assert len(await journal(env, method="GET", path=job_path(flavour))) == 7
        await assert_charged(env, flavour, [caught.value.job_id])
        await bankr.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_cancel_a_live_job(flavour: str) -> None:
    async with MockbankrEnv(seed=1) as env:
        bankr = client(env, flavour)
        submitted = await bankr.prompt("Analyze the ETH market")  # 10-30 s

        cancelled = await bankr.cancel_job(submitted.job_id)
        env.advance(60)
        later = await bankr.get_job_status(submitted.job_id)

        assert cancelled.status == later.status == "cancelled"
        assert later.cancelled_at == cancelled.cancelled_at
        summary = await assert_charged(env, flavour, [submitted.job_id])
        if flavour == "x402":
            assert summary["byStatus"]["cancelled"] == {
                "count": 1,
                "totalAtomic": "100000",
                "totalUsdc": "0.1",
            }
        await bankr.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_cancel_by_another_client_ends_the_poll_within_one_interval(
    flavour: str,
) -> None:
    async with MockbankrEnv(seed=1) as env:
        bankr, other = client(env, flavour), client(env, flavour)  # same wallet (or key)
        submitted = await bankr.prompt("Analyze the ETH market")
        poll = asyncio.ensure_future(bankr.poll_job(submitted.job_id, interval=2.0))
        await env.clock.sleep(5.0)

        await other.cancel_job(submitted.job_id)
        cancelled_at = env.clock.now()
        final = await poll

        assert final.status == "cancelled"
        assert env.clock.now() - cancelled_at <= 2.0
        await assert_charged(env, flavour, [submitted.job_id])
        await bankr.aclose()
        await other.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_forced_failure_ends_polling_with_its_error_and_still_costs(flavour: str) -> None:
    async with MockbankrEnv(seed=1) as env:
        await env.http.post("/__mock/rules", json=FAIL)
        bankr = client(env, flavour)

        job = await bankr.prompt_and_wait(PRICE)
        with pytest.raises(JobFailedError) as caught:
            await bankr.prompt_and_wait(PRICE, raise_on_failure=True)

        assert (job.status, job.error) == ("failed", "no liquidity")
        summary = await assert_charged(env, flavour, [job.job_id, caught.value.job_id])
        if flavour == "x402":
            assert summary["byStatus"]["failed"]["count"] == 2
            # The same prompt twice within 60 s: flagged as a likely blind retry.
            assert summary["duplicateCount"] == 1
        await bankr.aclose()


@pytest.mark.anyio
async def test_another_wallet_cannot_see_or_cancel_the_job() -> None:
    async with MockbankrEnv(seed=1) as env:
        alice, bob = client(env, "x402"), client(env, "x402", BOB_KEY)
        submitted = await alice.prompt(PRICE)

        with pytest.raises(NotFoundError):
            await bob.get_job_status(submitted.job_id)
        with pytest.raises(NotFoundError):
            await bob.cancel_job(submitted.job_id)

        assert (await alice.get_job_status(submitted.job_id)).status == "pending"
        await alice.aclose()
        await bob.aclose()


@pytest.mark.anyio
async def test_a_price_over_the_cap_is_refused_and_nothing_is_charged() -> None:
    settings = Settings(seed=1, payment=PaymentTerms(price_atomic=2_000_000))
    async with MockbankrEnv(seed=1, settings=settings) as env:
        bankr = client(env, "x402")  # the default cap: 1 USDC

        with pytest.raises(PaymentRequiredError) as caught:
            await bankr.prompt(PRICE)

        assert caught.value.status_code == 402
        assert caught.value.accepts[0]["maxAmountRequired"] == "2000000"
        # Asked once, never paid: no X-PAYMENT was sent.
        prompts = await journal(env, method="POST", path="/v2/prompt")
        assert [e["status"] for e in prompts] == [402]
        assert (await get(env, "/__mock/ledger"))["count"] == 0
        assert (await get(env, "/__mock/jobs"))["total"] == 0
        await bankr.aclose()


@pytest.mark.anyio
async def test_a_raised_cap_pays_the_higher_price() -> None:
    settings = Settings(seed=1, payment=PaymentTerms(price_atomic=2_000_000))
    async with MockbankrEnv(seed=1, settings=settings) as env:
        bankr = env.async_client(auth=X402Auth(ALICE_KEY, max_payment_usdc=2))

        submitted = await bankr.prompt(PRICE)

        summary = await get(env, "/__mock/ledger")
        assert [(e["jobId"], e["amountAtomic"]) for e in summary["entries"]] == [
            (submitted.job_id, "2000000")
        ]
        await bankr.aclose()


@pytest.mark.anyio
async def test_a_payment_the_server_refuses_is_not_retried_and_charges_nothing() -> None:
    async with MockbankrEnv(seed=1) as env:
        # A client whose clock is an hour behind signs an authorization that expired.
        late = X402Auth(ALICE_KEY, now=lambda: env.clock.now() - 3600)
        bankr = env.async_client(auth=late)

        with pytest.raises(PaymentRequiredError) as caught:
            await bankr.prompt(PRICE)

        assert caught.value.error == PaymentReason.EXPIRED
        prompts = await journal(env, method="POST", path="/v2/prompt")
        assert [e["status"] for e in prompts] == [402, 402]
        assert (await get(env, "/__mock/ledger"))["count"] == 0
        await bankr.aclose()


def test_the_sync_client_pays_and_polls() -> None:
    with MockbankrEnv(seed=2) as env:
        bankr = env.sync_client(auth=X402Auth(ALICE_KEY))

        job = bankr.prompt_and_wait(PRICE)
        cancelled = bankr.cancel_job(bankr.prompt("Analyze the ETH market").job_id)

        assert job.status == "completed"
        assert cancelled.status == "cancelled"
        entries = asyncio.run(env.store.ledger())
        assert [(e.job_id, e.payer, e.amount_atomic) for e in entries] == [
            (job.job_id, ALICE, 100_000),
            (cancelled.job_id, ALICE, 100_000),
        ]
        bankr.close()
