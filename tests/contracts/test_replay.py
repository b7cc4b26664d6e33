"""Replay (consumer side): every contract against the reference client, and proof it can fail."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

import pytest
from bankr_client import BankrError, JobStatus, RateLimitError, RetryPolicy

from mockbankr.contracts import load_contract, replay
from mockbankr.contracts.scenarios import Actors

from .conftest import NAMES, PATHS, mutated

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
async def test_the_client_replays_every_contract(path: Any) -> None:
    difference = await replay(load_contract(path))
    assert difference is None, str(difference)


class IgnoresRetryAfter(RetryPolicy):
    """A broken policy: the server's Retry-After is dropped, the plain backoff used."""

    def decide(
        self,
        attempt: int,
        error: BankrError,
        *,
        is_read: bool,
        sent: bool,
        remaining: float | None,
        rng: random.Random | None = None,
    ) -> float | None:
        if isinstance(error, RateLimitError):
            error = RateLimitError(error.status_code, error.error, error.message, error.body)
        return super().decide(
            attempt, error, is_read=is_read, sent=sent, remaining=remaining, rng=rng
        )


@pytest.mark.parametrize("name", ["rate-limit-429", "x402-rate-limit-429"])
async def test_a_retry_that_ignores_retry_after_fails_replay_at_the_next_offset(name: str) -> None:
    contract = load_contract(PATHS[NAMES.index(name)])
    difference = await replay(contract, retry=IgnoresRetryAfter())
    assert difference is not None
    assert difference.pointer == "/at"
    assert difference.expected == "7.0 s"
    assert "GET" in difference.context


async def test_a_retry_without_jitter_fails_replay_of_the_503_backoff() -> None:
    difference = await replay(
        load_contract(PATHS[NAMES.index("retry-503")]), retry=RetryPolicy(jitter=False)
    )
    assert difference is not None
    assert (difference.pointer, difference.expected, difference.actual) == (
        "/at",
        "0.567182 s",
        "1.0 s",
    )
    assert "exchange 1 (client POST /agent/prompt" in difference.context


async def _poll_ignoring_cancelled(actors: Actors, args: Mapping[str, Any]) -> JobStatus:
    """A broken poll: only completed and failed end it (the official SDK's defect)."""
    job_id = (await actors.client.prompt(args["prompt"])).job_id

    async def other_party() -> None:
        await actors.clock.sleep(args["cancel_after"])
        await actors.other.cancel_job(job_id)

    other = asyncio.ensure_future(other_party())
    try:
        while True:
            status = await actors.client.get_job_status(job_id)
            if status.status in ("completed", "failed"):
                return status
            await actors.clock.sleep(2.0)
    finally:
        await other


@pytest.mark.parametrize("name", ["cancelled-by-other", "x402-cancelled-by-other"])
async def test_a_poll_that_ignores_cancelled_fails_replay(name: str) -> None:
    contract = load_contract(PATHS[NAMES.index(name)])
    difference = await replay(contract, code=_poll_ignoring_cancelled)
    assert difference is not None
    assert difference.expected == "no further request"
    assert difference.actual.startswith("GET ")
    assert difference.actual.endswith("@8.0s")


async def test_another_poll_interval_fails_replay() -> None:
    contract = load_contract(PATHS[NAMES.index("completed")])
    difference = await replay(contract, args={**contract.call.args, "interval": 3.0})
    assert difference is not None
    assert (difference.pointer, difference.expected, difference.actual) == (
        "/at",
        "2.0 s",
        "3.0 s",
    )


async def test_a_longer_deadline_fails_replay_on_the_capped_request_timeout() -> None:
    contract = load_contract(PATHS[NAMES.index("poll-timeout")])
    difference = await replay(contract, args={**contract.call.args, "timeout": 30.0})
    assert difference is not None
    assert difference.pointer == "/request/timeout"
    assert (difference.expected, difference.actual) == ("20.0 s", "30.0 s")


async def test_one_attempt_too_many_fails_replay() -> None:
    contract = load_contract(PATHS[NAMES.index("max-attempts")])
    difference = await replay(contract, args={**contract.call.args, "max_attempts": 6})
    assert difference is not None
    assert difference.expected == "no further request"


async def test_one_attempt_too_few_fails_replay() -> None:
    contract = load_contract(PATHS[NAMES.index("max-attempts")])
    difference = await replay(contract, args={**contract.call.args, "max_attempts": 4})
    assert difference is not None
    assert difference.pointer == "/exchanges"
    assert "without sending it" in difference.actual


async def test_a_shifted_offset_in_the_file_fails_replay() -> None:
    def shift(data: dict[str, Any]) -> None:
        data["exchanges"][3]["at"] = 5.0
        data["end"]["at"] = 5.0

    difference = await replay(mutated("completed", shift))
    assert difference is not None
    assert (difference.pointer, difference.expected, difference.actual) == (
        "/at",
        "5.0 s",
        "4.0 s",
    )


async def test_a_client_with_the_valid_key_fails_the_bad_key_contract() -> None:
    def valid(data: dict[str, Any]) -> None:
        data["client"]["api_key"] = "valid"

    difference = await replay(mutated("bad-key", valid))
    assert difference is not None
    assert difference.pointer == "/request/headers/x-api-key"
    assert difference.expected == "the replay's bad_api_key"


async def test_a_different_recorded_end_fails_replay() -> None:
    def end(data: dict[str, Any]) -> None:
        data["end"] = {"at": 4.0, "status": "failed"}

    difference = await replay(mutated("completed", end))
    assert difference is not None
    assert (difference.pointer, difference.expected, difference.actual) == (
        "/end",
        "failed",
        "completed",
    )


async def test_a_request_body_the_client_does_not_send_fails_replay() -> None:
    def body(data: dict[str, Any]) -> None:
        data["exchanges"][0]["request"]["body"]["threadId"] = "thr_1"

    difference = await replay(mutated("completed", body))
    assert difference is not None
    assert difference.pointer == "/request/body/threadId"
    assert difference.actual == "nothing (missing)"


async def test_the_hung_request_ends_at_the_deadline_because_the_timeout_moved_the_clock() -> None:
    # The only sleep-free way from offset 0 to the recorded end at 12 s is the side effect
    # advancing the clock by the request's 12 s timeout before raising ReadTimeout.
    contract = load_contract(PATHS[NAMES.index("hung-request")])
    assert contract.exchanges[1].timed_out_after == contract.exchanges[1].request.timeout == 12.0
    assert contract.end.at == 12.0
    assert await replay(contract) is None


async def test_a_shorter_request_timeout_fails_replay() -> None:
    def shorter(data: dict[str, Any]) -> None:
        # Below the deadline: the hung poll would time out at 5 s and be retried.
        data["client"]["timeout"] = 5.0

    difference = await replay(mutated("hung-request", shorter))
    assert difference is not None
    assert difference.pointer == "/request/timeout"
    assert (difference.expected, difference.actual) == ("12.0 s", "5.0 s")
