"""The reference client against the simulator: in-process on virtual time, and live."""

from __future__ import annotations

import asyncio

import pytest
from bankr_client import (
    AsyncBankrClient,
    BankrClient,
    JobFailedError,
    NotFoundError,
    PollAttemptsExceededError,
    PollTimeoutError,
)

from mockbankr.clock import perf_seconds
from mockbankr.testing import LiveServer, MockbankrEnv

PRICE = "What is the price of ETH?"
STUCK = {"match": {"prompt": "stuck"}, "action": {"job": {"outcome": "stuck"}}}


@pytest.mark.anyio
async def test_prompt_and_wait_completes_in_the_tables_time() -> None:
    async with MockbankrEnv(seed=1) as env:
        t0 = env.clock.now()
        job = await env.client.prompt_and_wait(PRICE)
        assert job.status == "completed"
        assert job.response
        assert job.processing_time is not None
        assert 2000 <= job.processing_time <= 5000
        # Polling every 2 s ends on the first poll at or after completion.
        assert env.clock.now() - t0 - job.processing_time / 1000 < 2.0


@pytest.mark.anyio
async def test_a_300_second_timeout_takes_milliseconds_and_ends_at_the_deadline() -> None:
    async with MockbankrEnv(seed=1) as env:
        await env.http.post("/__mock/rules", json=STUCK)
        t0, wall0 = env.clock.now(), perf_seconds()
        with pytest.raises(PollTimeoutError) as caught:
            await env.client.prompt_and_wait("stuck price", timeout=300, max_attempts=1000)
        assert env.clock.now() - t0 == pytest.approx(300)
        assert caught.value.last_status is not None
        assert caught.value.last_status.status == "processing"
        assert perf_seconds() - wall0 < 2.0  # 300 simulated seconds, no real waiting


@pytest.mark.anyio
async def test_max_attempts_counts_status_requests() -> None:
    async with MockbankrEnv(seed=1) as env:
        await env.http.post("/__mock/rules", json=STUCK)
        with pytest.raises(PollAttemptsExceededError):
            await env.client.prompt_and_wait("stuck price", max_attempts=7)
        polls = (await env.http.get("/__mock/journal", params={"path": "/agent/job/*"})).json()
        assert len(polls["entries"]) == 7


@pytest.mark.anyio
async def test_another_party_cancels_mid_poll_and_the_poll_ends_within_one_interval() -> None:
    async with MockbankrEnv(seed=1) as env:
        submitted = await env.client.prompt("Analyze the ETH market")  # 10-30 s
        poll = asyncio.ensure_future(env.client.poll_job(submitted.job_id, interval=2.0))
        await env.clock.sleep(5.0)
        other = env.async_client()  # same key, another process in real life
        cancelled = await other.cancel_job(submitted.job_id)
        cancelled_at = env.clock.now()
        final = await poll
        assert cancelled.status == final.status == "cancelled"
        assert env.clock.now() - cancelled_at <= 2.0
        await other.aclose()


@pytest.mark.anyio
async def test_a_forced_failure_ends_polling_with_its_error() -> None:
    async with MockbankrEnv(seed=1) as env:
        await env.http.post(
            "/__mock/rules",
            json={
                "match": {"prompt": "price"},
                "action": {"job": {"outcome": "failed", "error": "no liquidity"}},
            },
        )
        job = await env.client.prompt_and_wait(PRICE)
        assert (job.status, job.error) == ("failed", "no liquidity")
        with pytest.raises(JobFailedError):
            await env.client.prompt_and_wait(PRICE, raise_on_failure=True)


@pytest.mark.anyio
async def test_unknown_job_is_a_not_found_error_at_once() -> None:
    async with MockbankrEnv(seed=1) as env:
        with pytest.raises(NotFoundError):
            await env.client.poll_job("job_NOPE")
        polls = (await env.http.get("/__mock/journal")).json()["entries"]
        assert len(polls) == 1


def test_the_sync_client_and_its_batch_helper_on_the_env() -> None:
    with MockbankrEnv(seed=2) as env:
        client = env.sync_client()
        assert client.prompt_and_wait("Swap 10 USDC for ETH").status in {"completed", "failed"}
        prompts = [PRICE, "Check my balance", "Swap 1 ETH for USDC", "hello"]
        items = client.prompt_many(prompts, concurrency=2)
        assert [item.prompt for item in items] == prompts
        assert all(item.ok for item in items)
        client.close()


def run_scenario(client: BankrClient) -> tuple[str, str]:
    """One piece of client code, run unchanged in-process and against a live server."""
    job = client.prompt_and_wait(PRICE, interval=0.5)
    pending = client.prompt("Analyze the ETH market")
    cancelled = client.cancel_job(pending.job_id)
    return job.status.value, cancelled.status.value


@pytest.mark.live
def test_the_same_client_code_runs_against_a_live_server(mockbankr_server: LiveServer) -> None:
    with BankrClient(mockbankr_server.base_url, "bk_live") as live:
        assert run_scenario(live) in {("completed", "cancelled"), ("failed", "cancelled")}
    with MockbankrEnv(seed=0) as env:
        assert run_scenario(env.sync_client()) == run_scenario(env.sync_client())


@pytest.mark.anyio
async def test_the_plugin_fixture_client(bankr_client: AsyncBankrClient) -> None:
    job = await bankr_client.prompt_and_wait(PRICE)
    assert job.status in {"completed", "failed"}
