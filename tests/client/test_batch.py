"""prompt_many: input order, isolated failures, bounded concurrency, and the sync wiring."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import httpx
import pytest
from bankr_client import (
    AsyncBankrClient,
    BadRequestError,
    BankrClient,
    ConfigError,
    JobStatusName,
    PollTimeoutError,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockbankr.clock import VirtualClock

from .fakeapi import BASE, KEY


class JobServer:
    """A tiny stateful API: each prompt becomes a job that completes after ``polls`` status
    reads (with its prompt as the response); a prompt containing "bad" gets a 400, one
    containing "fail" fails, one containing "slow" never finishes. Every request takes
    ``latency[prompt]`` virtual seconds, so concurrent requests overlap."""

    def __init__(self, clock: VirtualClock, latency: dict[str, float] | None = None) -> None:
        self.clock = clock
        self.latency = latency or {}
        self.jobs: dict[str, list[Any]] = {}
        self.ids = itertools.count(1)
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0

    def _answer(self, request: httpx.Request) -> tuple[str, httpx.Response]:
        if request.url.path == "/agent/prompt":
            prompt: str = httpx.Response(200, content=request.content).json()["prompt"]
            if "bad" in prompt:
                body = {"error": "Invalid request", "message": "bad prompt"}
                return prompt, httpx.Response(400, json=body)
            job_id = f"job_{next(self.ids)}"
            self.jobs[job_id] = [prompt, 0]
            body = {"success": True, "jobId": job_id, "threadId": "thr", "status": "pending"}
            return prompt, httpx.Response(202, json=body)
        job_id = request.url.path.rsplit("/", 1)[-1]
        prompt, polls = self.jobs[job_id]
        self.jobs[job_id][1] = polls + 1
        status = "processing" if polls < 2 or "slow" in prompt else "completed"
        if status == "completed" and "fail" in prompt:
            status = "failed"
        body = {"success": True, "jobId": job_id, "status": status, "prompt": prompt}
        if status == "completed":
            body["response"] = prompt.upper()
        return prompt, httpx.Response(200, json=body)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        prompt, response = self._answer(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.clock.sleep(self.latency.get(prompt, 0.5))
        finally:
            self.in_flight -= 1
        return response

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        prompt, response = self._answer(request)
        self.clock.advance(self.latency.get(prompt, 0.5))
        return response


def async_client(server: JobServer, **kwargs: Any) -> AsyncBankrClient:
    return AsyncBankrClient(
        BASE,
        KEY,
        transport=httpx.MockTransport(server.handle_async),
        clock=server.clock,
        rng=random.Random(0),
        **kwargs,
    )


@pytest.mark.anyio
async def test_results_come_back_in_input_order_with_failures_isolated():
    server = JobServer(VirtualClock())
    prompts = ["price of ETH", "bad one", "swap fail", "price of BTC", "slow thing"]
    async with async_client(server) as client:
        items = await client.prompt_many(prompts, concurrency=2, interval=1.0, timeout=30.0)
    assert [item.prompt for item in items] == prompts
    assert items[0].ok
    assert items[0].result is not None
    assert items[0].result.response == "PRICE OF ETH"
    assert isinstance(items[1].error, BadRequestError)
    assert items[1].result is None
    assert items[2].result is not None
    assert items[2].result.status is JobStatusName.FAILED
    assert items[3].result is not None
    assert items[3].result.response == "PRICE OF BTC"
    assert isinstance(items[4].error, PollTimeoutError)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prompts=st.lists(st.sampled_from(["a", "b", "bad", "fail", "c", "d", "e"]), max_size=12),
    concurrency=st.integers(1, 6),
    latencies=st.lists(st.floats(0.01, 5.0), min_size=7, max_size=7),
)
def test_in_flight_never_exceeds_concurrency_and_order_holds(
    prompts: list[str], concurrency: int, latencies: list[float]
):
    names = ["a", "b", "bad", "fail", "c", "d", "e"]
    server = JobServer(VirtualClock(), dict(zip(names, latencies, strict=True)))

    async def main() -> list[Any]:
        async with async_client(server) as client:
            return await client.prompt_many(prompts, concurrency=concurrency, interval=1.0)

    items = asyncio.run(main())
    assert [item.prompt for item in items] == prompts
    assert server.max_in_flight <= concurrency
    if prompts:
        # The bound is reached, so the batch really runs concurrently.
        assert server.max_in_flight == min(concurrency, len(prompts))
    for item in items:
        if item.prompt == "bad":
            assert isinstance(item.error, BadRequestError)
        else:
            assert item.result is not None
            expected = JobStatusName.FAILED if item.prompt == "fail" else JobStatusName.COMPLETED
            assert item.result.status is expected


def test_the_sync_client_runs_batches_on_its_async_transport():
    clock = VirtualClock()
    server = JobServer(clock)
    sync_calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        sync_calls.append(request)
        raise AssertionError("prompt_many must use the async twin")

    with BankrClient(
        BASE,
        KEY,
        transport=httpx.MockTransport(refuse),
        async_transport=httpx.MockTransport(server.handle_async),
        clock=clock,
        rng=random.Random(0),
    ) as client:
        start = clock.now()
        items = client.prompt_many(["x", "y", "z"], concurrency=3, interval=2.0)
    assert [i.result.response if i.result else None for i in items] == ["X", "Y", "Z"]
    assert sync_calls == []
    assert server.max_in_flight == 3
    # Three concurrent jobs, each: prompt 0.5 s, then three polls 0.5 s apart by 2 s sleeps.
    assert clock.now() - start == pytest.approx(0.5 + 3 * 0.5 + 2 * 2.0)


def test_a_mock_transport_serves_both_sync_and_batch_requests():
    clock = VirtualClock()
    server = JobServer(clock)
    transport = httpx.MockTransport(server.handle)
    with BankrClient(BASE, KEY, transport=transport, clock=clock) as client:
        assert client.prompt_and_wait("one").response == "ONE"
        items = client.prompt_many(["two", "three"], concurrency=1)
    assert [i.result.response if i.result else None for i in items] == ["TWO", "THREE"]


@pytest.mark.anyio
async def test_sync_prompt_many_works_inside_a_running_loop():
    clock = VirtualClock()
    server = JobServer(clock)
    with BankrClient(
        BASE,
        KEY,
        transport=httpx.MockTransport(server.handle),
        async_transport=httpx.MockTransport(server.handle),
        clock=clock,
    ) as client:
        items = client.prompt_many(["p", "q"], concurrency=2)
    assert [i.ok for i in items] == [True, True]


@pytest.mark.anyio
@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True])
async def test_nonsense_concurrency_is_refused(concurrency: Any):
    server = JobServer(VirtualClock())
    async with async_client(server) as client:
        with pytest.raises(ConfigError):
            await client.prompt_many(["a"], concurrency=concurrency)
    assert server.requests == 0


@pytest.mark.anyio
async def test_an_empty_batch_is_empty():
    server = JobServer(VirtualClock())
    async with async_client(server) as client:
        assert await client.prompt_many([]) == []
