"""The client against the real simulator, in-process on virtual time (mockbankr.testing)."""

from __future__ import annotations

import pytest
from bankr_client import JobStatusName, NotFoundError, PollTimeoutError

from mockbankr.testing import MockbankrEnv


@pytest.mark.anyio
async def test_prompt_and_wait_completes_on_virtual_time():
    async with MockbankrEnv(seed=1) as env:
        start = env.clock.now()
        job = await env.client.prompt_and_wait("What is the price of ETH?", interval=1.0)
        assert job.status is JobStatusName.COMPLETED
        assert job.response
        assert job.created_at is not None
        assert job.created_at.tzinfo is not None
        assert 0 < env.clock.now() - start < 60


@pytest.mark.anyio
async def test_a_cancelled_job_ends_polling():
    async with MockbankrEnv(seed=1) as env:
        accepted = await env.client.prompt("Swap 10 USDC for ETH")
        cancelled = await env.client.cancel_job(accepted.job_id)
        assert cancelled.status is JobStatusName.CANCELLED
        polled = await env.client.poll_job(accepted.job_id, max_attempts=2)
        assert polled.status is JobStatusName.CANCELLED


@pytest.mark.anyio
async def test_the_poll_deadline_holds_against_the_simulator():
    async with MockbankrEnv(seed=1) as env:
        accepted = await env.client.prompt("Give me a complex analysis of the market")
        start = env.clock.now()
        with pytest.raises(PollTimeoutError) as info:
            await env.client.poll_job(accepted.job_id, interval=2.0, timeout=1.5)
        assert env.clock.now() - start <= 1.5
        assert info.value.last_status is not None
        assert not info.value.last_status.is_terminal


@pytest.mark.anyio
async def test_an_unknown_job_is_not_found():
    async with MockbankrEnv(seed=1) as env:
        with pytest.raises(NotFoundError) as info:
            await env.client.get_job_status("job_nope")
        assert info.value.error == "Job not found"


def test_the_sync_client_and_its_batches():
    with MockbankrEnv(seed=2) as env:
        client = env.sync_client(async_transport=env.transport)
        assert client.prompt_and_wait("What is the price of ETH?").is_terminal
        items = client.prompt_many(["What is the price of BTC?", "Check my balance"])
        assert [item.ok for item in items] == [True, True]
        client.close()


def test_payments_and_job_signatures_pass_the_simulators_verifier(flavour: str):
    from mockbankr.job_auth import verify_job_signature
    from mockbankr.money import PaymentTerms
    from mockbankr.x402 import challenge_body, verify_payment

    from .fakeapi import Answer, FakeBankr, RecordingClock, drive, job
    from .test_x402 import PAYER, auth, paid

    clock = RecordingClock(start=1_736_937_000.0)
    terms = PaymentTerms()
    fake = FakeBankr(
        clock,
        prompt=[Answer(402, challenge_body(terms, "http://bankr.test/v2/prompt")), paid()],
        status=[job("completed")],
    )

    def run(client: object) -> object:
        return client.prompt_and_wait("hi")

    drive(flavour, fake, run, auth=auth())
    header = fake.of("prompt")[1].request.headers["X-PAYMENT"]
    verified = verify_payment(header, terms, now=clock.now())
    assert verified.payer == PAYER
    assert verified.value == terms.price_atomic
    status_headers = fake.of("status")[0].request.headers
    assert verify_job_signature(status_headers, "job_1", "status") == PAYER
