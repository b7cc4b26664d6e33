"""Every fault rule action, met by the reference client in-process on virtual time.

``tests/test_control.py`` checks the actions over raw HTTP. Here ``bankr_client`` meets
them on a :class:`~mockbankr.testing.MockbankrEnv`, and each test pins what the client
does about them: when it retries and after how long, when its deadline fires, which
error it raises. Rules are posted through ``env.http`` (as a test suite would), what
arrived is read back from the request journal, and all time is the env's VirtualClock:
no test sleeps, and every wait is asserted to the simulated second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from bankr_client import (
    AsyncBankrClient,
    JobFailedError,
    JobStatusName,
    NotFoundError,
    PollTimeoutError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    TransportError,
)

from mockbankr import Settings
from mockbankr.clock import perf_seconds
from mockbankr.testing import MockbankrEnv, SyncClockTransport

PRICE = "What is the price of ETH?"
SWAP = "Swap 10 USDC for ETH"
JOBS = "/agent/job/*"
UNAVAILABLE = {"error": "Service unavailable", "message": "Try again"}
#: No jitter: the n-th retry waits exactly 2 ** n seconds, so waits can be asserted exactly.
EXACT = RetryPolicy(jitter=False)
#: A generous ceiling for "milliseconds of wall time" on a slow CI machine.
WALL_BUDGET = 1.0


# -- helpers --------------------------------------------------------------------------


async def add_rule(env: MockbankrEnv, rule: dict[str, Any]) -> dict[str, Any]:
    response = await env.http.post("/__mock/rules", json=rule)
    assert response.status_code == 201, response.text
    listed: dict[str, Any] = response.json()
    return listed


def on_status_reads(action: dict[str, Any], **limits: Any) -> dict[str, Any]:
    """A rule acting on every ``GET /agent/job/{id}``."""
    return {"match": {"method": "GET", "path": JOBS}, "action": action, **limits}


def on_prompts(action: dict[str, Any], **limits: Any) -> dict[str, Any]:
    """A rule acting on every ``POST /agent/prompt``."""
    return {"match": {"method": "POST", "path": "/agent/prompt"}, "action": action, **limits}


async def journal(env: MockbankrEnv, **filters: str) -> list[dict[str, Any]]:
    response = await env.http.get("/__mock/journal", params=filters)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


async def job_detail(env: MockbankrEnv, job_id: str) -> dict[str, Any]:
    response = await env.http.get(f"/__mock/jobs/{job_id}")
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


async def jobs_total(env: MockbankrEnv) -> int:
    total: int = (await env.http.get("/__mock/jobs")).json()["total"]
    return total


def unix(stamp: str) -> float:
    """An ISO timestamp of the API (``...000Z``) as unix seconds."""
    return dt.datetime.fromisoformat(stamp).timestamp()


def utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


async def finished_job(env: MockbankrEnv, client: AsyncBankrClient) -> tuple[str, str]:
    """A price job run to its end (2-5 s), and the terminal status the server holds."""
    job_id = (await client.prompt(PRICE)).job_id
    env.advance(60)
    status = (await job_detail(env, job_id))["status"]
    assert status in {"completed", "failed"}
    return job_id, status


# -- respond: 503 and 429 ---------------------------------------------------------------


@pytest.mark.anyio
async def test_503_twice_is_retried_and_the_journal_shows_three_status_requests() -> None:
    async with MockbankrEnv(seed=1) as env:
        client = env.async_client(retry=EXACT)
        job_id, server_status = await finished_job(env, client)
        await add_rule(
            env, on_status_reads({"respond": {"status": 503, "body": UNAVAILABLE}}, times=2)
        )
        t0 = env.clock.now()

        final = await client.poll_job(job_id)

        # The third request got the job's terminal status, so polling ended there.
        assert final.job_id == job_id
        assert final.status == server_status
        polls = await journal(env, path=f"/agent/job/{job_id}")
        assert [e["status"] for e in polls] == [503, 503, 200]
        assert [e["fault"] for e in polls] == ["respond", "respond", None]
        # Backoff without jitter: 1 s after the first 503, 2 s after the second.
        assert [unix(e["simTime"]) - t0 for e in polls] == [0, 1, 3]
        assert env.clock.now() - t0 == 3
        assert [r["remaining"] for r in (await env.http.get("/__mock/rules")).json()["rules"]] == [
            0
        ]
        await client.aclose()


@pytest.mark.anyio
async def test_503_twice_during_prompt_and_wait_is_retried_and_polling_goes_on() -> None:
    async with MockbankrEnv(seed=1) as env:
        await add_rule(
            env, on_status_reads({"respond": {"status": 503, "body": UNAVAILABLE}}, times=2)
        )
        seen: list[str] = []

        final = await env.client.prompt_and_wait(PRICE, on_status=lambda s: seen.append(s.status))

        assert final.is_terminal
        polls = await journal(env, path=JOBS)
        statuses = [e["status"] for e in polls]
        assert statuses[:3] == [503, 503, 200]
        assert set(statuses[2:]) == {200}
        # on_status saw exactly the answered polls, never an error body as a status.
        assert len(seen) == len(polls) - 2
        assert seen[-1] == final.status
        assert len(await journal(env, method="POST", path="/agent/prompt")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("read", ["get_job_status", "poll_job"])
async def test_429_with_retry_after_2_waits_exactly_2_simulated_seconds(read: str) -> None:
    async with MockbankrEnv(seed=1) as env:
        job_id, server_status = await finished_job(env, env.client)
        rate_limited = {
            "status": 429,
            "headers": {"Retry-After": "2"},
            "body": {"error": "Rate limit exceeded", "message": "Retry after 60 seconds"},
        }
        await add_rule(env, on_status_reads({"respond": rate_limited}, times=1))
        t0 = env.clock.now()

        # The default client jitters its backoff; Retry-After replaces it, exactly.
        status = await getattr(env.client, read)(job_id)

        assert status.status == server_status
        assert env.clock.now() - t0 == 2
        polls = await journal(env, path=f"/agent/job/{job_id}")
        assert [(e["status"], unix(e["simTime"]) - t0) for e in polls] == [(429, 0), (200, 2)]


@pytest.mark.anyio
async def test_a_prompt_refused_with_429_is_resent_after_retry_after_and_creates_one_job() -> None:
    async with MockbankrEnv(seed=1) as env:
        await add_rule(
            env,
            on_prompts(
                {"respond": {"status": 429, "headers": {"Retry-After": "2"}, "body": {}}}, times=1
            ),
        )
        t0 = env.clock.now()

        accepted = await env.client.prompt(PRICE)

        posts = await journal(env, path="/agent/prompt")
        assert [(e["status"], unix(e["simTime"]) - t0) for e in posts] == [(429, 0), (202, 2)]
        assert posts[-1]["jobId"] == accepted.job_id
        assert await jobs_total(env) == 1


@pytest.mark.anyio
async def test_a_503_that_never_ends_is_raised_as_server_error_after_the_retries() -> None:
    async with MockbankrEnv(seed=1) as env:
        client = env.async_client(retry=EXACT)
        job_id, _ = await finished_job(env, client)
        await add_rule(env, on_status_reads({"respond": {"status": 503, "body": UNAVAILABLE}}))
        t0 = env.clock.now()

        with pytest.raises(ServerError) as caught:
            await client.get_job_status(job_id)

        assert (caught.value.status_code, caught.value.message) == (503, "Try again")
        polls = await journal(env, path=f"/agent/job/{job_id}")
        assert [unix(e["simTime"]) - t0 for e in polls] == [0, 1, 3, 7]  # 1 + max_retries
        await client.aclose()


# -- hang and delay -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_hang_on_status_reads_ends_polling_at_the_deadline_in_milliseconds() -> None:
    async with MockbankrEnv(seed=1) as env:
        job_id = (await env.client.prompt(PRICE)).job_id
        await add_rule(env, on_status_reads({"hang": {}}))
        t0, wall0 = env.clock.now(), perf_seconds()

        with pytest.raises(PollTimeoutError) as caught:
            await env.client.poll_job(job_id, timeout=60)

        # The first read times out after the client's 30 s; the retry's timeout is capped
        # by the 30-odd seconds left, so the deadline fires exactly at 60 s, not a request late.
        assert env.clock.now() - t0 == pytest.approx(60, abs=1e-6)
        assert perf_seconds() - wall0 < WALL_BUDGET
        assert (caught.value.job_id, caught.value.timeout) == (job_id, 60)
        assert caught.value.last_status is None
        assert isinstance(caught.value.__cause__, RequestTimeoutError)
        hung = await journal(env, path=f"/agent/job/{job_id}")
        assert [e["fault"] for e in hung] == ["hang", "hang"]


@pytest.mark.anyio
async def test_hang_on_a_single_read_is_a_request_timeout_at_the_clients_timeout() -> None:
    async with MockbankrEnv(seed=1) as env:
        client = env.async_client(timeout=5, retry=RetryPolicy(max_retries=0))
        job_id = (await client.prompt(PRICE)).job_id
        await add_rule(env, on_status_reads({"hang": {}}))
        t0 = env.clock.now()

        with pytest.raises(RequestTimeoutError) as caught:
            await client.get_job_status(job_id)

        assert env.clock.now() - t0 == 5
        assert caught.value.sent is True
        assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
        await client.aclose()


@pytest.mark.anyio
async def test_a_hung_prompt_is_not_resent_because_it_may_have_been_accepted() -> None:
    async with MockbankrEnv(seed=1) as env:
        client = env.async_client(timeout=10)
        await add_rule(env, on_prompts({"hang": {}}, times=1))  # a resend would succeed
        t0 = env.clock.now()

        with pytest.raises(RequestTimeoutError) as caught:
            await client.prompt(PRICE)

        assert env.clock.now() - t0 == 10
        assert caught.value.sent is True
        assert len(await journal(env, path="/agent/prompt")) == 1
        await client.aclose()


@pytest.mark.anyio
async def test_hang_shorter_than_the_timeout_answers_504_which_a_read_retries() -> None:
    async with MockbankrEnv(seed=1) as env:
        client = env.async_client(retry=EXACT)
        job_id, server_status = await finished_job(env, client)
        await add_rule(env, on_status_reads({"hang": {"seconds": 4}}, times=1))
        t0 = env.clock.now()

        status = await client.get_job_status(job_id)

        assert status.status == server_status
        assert env.clock.now() - t0 == 5  # 4 s hung, then the 1 s backoff
        polls = await journal(env, path=f"/agent/job/{job_id}")
        assert [(e["status"], e["fault"]) for e in polls] == [(504, "hang"), (200, None)]
        await client.aclose()


@pytest.mark.anyio
async def test_delay_makes_the_answer_arrive_that_many_simulated_seconds_later() -> None:
    async with MockbankrEnv(seed=1) as env:
        job_id, server_status = await finished_job(env, env.client)
        await add_rule(env, on_status_reads({"delay": {"seconds": 7}}, times=1))
        t0, wall0 = env.clock.now(), perf_seconds()

        delayed = await env.client.get_job_status(job_id)
        t1 = env.clock.now()
        prompt = await env.client.get_job_status(job_id)

        assert delayed.status == prompt.status == server_status
        assert t1 - t0 == 7
        assert env.clock.now() == t1  # the rule was spent: no delay the second time
        assert perf_seconds() - wall0 < WALL_BUDGET
        polls = await journal(env, path=f"/agent/job/{job_id}")
        assert [(e["status"], e["fault"]) for e in polls] == [(200, "delay"), (200, None)]


@pytest.mark.anyio
async def test_a_delay_beyond_the_request_timeout_is_a_timeout_then_a_retry() -> None:
    async with MockbankrEnv(seed=1) as env:
        client = env.async_client(retry=EXACT)  # timeout 30 s
        job_id, server_status = await finished_job(env, client)
        await add_rule(env, on_status_reads({"delay": {"seconds": 45}}, times=1))
        t0 = env.clock.now()

        status = await client.get_job_status(job_id)

        assert status.status == server_status
        assert env.clock.now() - t0 == 31  # 30 s timeout, 1 s backoff, an instant answer
        polls = await journal(env, path=f"/agent/job/{job_id}")
        assert [e["fault"] for e in polls] == ["delay", None]
        await client.aclose()


# -- drop and malformed ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_dropped_status_read_is_retried() -> None:
    async with MockbankrEnv(seed=1) as env:
        client = env.async_client(retry=EXACT)
        job_id, server_status = await finished_job(env, client)
        await add_rule(env, on_status_reads({"drop": {}}, times=1))
        t0 = env.clock.now()

        status = await client.get_job_status(job_id)

        assert status.status == server_status
        assert env.clock.now() - t0 == 1
        polls = await journal(env, path=f"/agent/job/{job_id}")
        assert [e["fault"] for e in polls] == ["drop", None]
        await client.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("read", ["get_job_status", "poll_job"])
async def test_reads_that_are_always_dropped_raise_transport_error_never_a_status(
    read: str,
) -> None:
    async with MockbankrEnv(seed=1) as env:
        job_id, _ = await finished_job(env, env.client)
        await add_rule(env, on_status_reads({"drop": {}}))

        with pytest.raises(TransportError) as caught:
            await getattr(env.client, read)(job_id)

        assert caught.value.sent is True  # not a RequestNotSentError: the request went out
        assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
        polls = await journal(env, path=f"/agent/job/{job_id}")
        assert [e["fault"] for e in polls] == ["drop"] * 4  # the first try and 3 retries


@pytest.mark.anyio
async def test_a_dropped_prompt_raises_transport_error_and_is_not_resent() -> None:
    async with MockbankrEnv(seed=1) as env:
        await add_rule(env, on_prompts({"drop": {}}, times=1))  # a resend would succeed

        with pytest.raises(TransportError) as caught:
            await env.client.prompt_and_wait(PRICE)

        # The connection broke after the request was sent: the job may exist and be
        # paid for, so the client must not create a second one by resending.
        assert caught.value.sent is True
        assert [e["fault"] for e in await journal(env, path="/agent/prompt")] == ["drop"]
        assert await journal(env, path=JOBS) == []
        assert await jobs_total(env) == 0  # mockbankr drops before the prompt is handled


@pytest.mark.anyio
@pytest.mark.parametrize("read", ["get_job_status", "poll_job"])
async def test_a_malformed_status_is_a_protocol_error_at_once(read: str) -> None:
    async with MockbankrEnv(seed=1) as env:
        job_id = (await env.client.prompt(PRICE)).job_id  # pending: a status would not end it
        await add_rule(env, on_status_reads({"malformed": {}}))

        with pytest.raises(ProtocolError) as caught:
            await getattr(env.client, read)(job_id)

        assert caught.value.status_code == 200
        assert caught.value.content.startswith('{"success": true, "jobId": "job_')
        # A malformed 2xx is no transient failure: not retried, not taken for a status.
        assert len(await journal(env, path=f"/agent/job/{job_id}")) == 1


@pytest.mark.anyio
async def test_a_malformed_prompt_answer_is_a_protocol_error_and_is_not_resent() -> None:
    async with MockbankrEnv(seed=1) as env:
        await add_rule(env, on_prompts({"malformed": {}}, times=1))

        with pytest.raises(ProtocolError) as caught:
            await env.client.prompt_and_wait(PRICE)

        assert caught.value.status_code == 200
        assert [e["fault"] for e in await journal(env, path="/agent/prompt")] == ["malformed"]
        assert await journal(env, path=JOBS) == []


# -- job: forced outcomes and lifecycle faults ------------------------------------------------


@pytest.mark.anyio
async def test_a_forced_failure_ends_poll_job_failed_with_the_given_error() -> None:
    error = "Insufficient liquidity for this swap"
    async with MockbankrEnv(seed=1) as env:
        await add_rule(
            env,
            {
                "match": {"prompt": "(?i)swap"},
                "action": {"job": {"outcome": "failed", "error": error, "latency": 6}},
            },
        )
        job_id = (await env.client.prompt(SWAP)).job_id
        t0 = env.clock.now()

        final = await env.client.poll_job(job_id, interval=2)

        assert (final.status, final.error) == (JobStatusName.FAILED, error)
        assert final.completed_at == utc(t0 + 6)
        assert env.clock.now() - t0 == 6  # polls at 0, 2, 4, 6 s
        with pytest.raises(JobFailedError) as caught:
            await env.client.prompt_and_wait(SWAP, raise_on_failure=True)
        assert caught.value.status.error == error


@pytest.mark.anyio
async def test_an_outcome_forced_through_the_control_plane_ends_the_poll() -> None:
    async with MockbankrEnv(seed=1) as env:
        job_id = (await env.client.prompt("Analyze the ETH market")).job_id  # 10-30 s
        forced = await env.http.post(
            f"/__mock/jobs/{job_id}/outcome",
            json={"outcome": "failed", "error": "forced from outside", "finish_in": 5},
        )
        assert forced.status_code == 200, forced.text
        t0 = env.clock.now()

        final = await env.client.poll_job(job_id, interval=2)

        assert (final.status, final.error) == ("failed", "forced from outside")
        assert env.clock.now() - t0 == 6  # the first poll at or after the 5 s finish


@pytest.mark.anyio
async def test_a_stuck_job_ends_in_poll_timeout_error_at_the_deadline() -> None:
    async with MockbankrEnv(seed=1) as env:
        await add_rule(env, {"match": {"prompt": "price"}, "action": {"job": {"outcome": "stuck"}}})
        job_id = (await env.client.prompt(PRICE)).job_id
        t0, wall0 = env.clock.now(), perf_seconds()

        with pytest.raises(PollTimeoutError) as caught:
            await env.client.poll_job(job_id, interval=2, timeout=45)

        assert env.clock.now() - t0 == 45
        assert perf_seconds() - wall0 < WALL_BUDGET
        assert caught.value.last_status is not None
        assert caught.value.last_status.status == "processing"
        # Polls at 0, 2, ..., 44 s; the last sleep is cut to the 1 s left, and no request
        # is sent at the deadline itself.
        polls = await journal(env, path=f"/agent/job/{job_id}")
        assert [unix(e["simTime"]) - t0 for e in polls] == list(range(0, 45, 2))


@pytest.mark.anyio
async def test_a_regressing_job_is_polled_on_to_its_end_and_costs_no_extra_poll() -> None:
    # What the client sees: the first poll after the job started answers "pending" (no
    # startedAt) once more; the client takes it as any non-terminal status and polls on.
    async with MockbankrEnv(seed=1) as env:
        await add_rule(
            env,
            {
                "match": {"prompt": "price"},
                "action": {"job": {"outcome": "regress", "latency": 10}},
            },
        )
        job_id = (await env.client.prompt(PRICE)).job_id
        t0 = env.clock.now()
        started = unix((await job_detail(env, job_id))["schedule"]["startedAt"])
        seen: list[tuple[float, str, bool]] = []

        def record(status: Any) -> None:
            seen.append((env.clock.now() - t0, status.status.value, status.started_at is None))

        final = await env.client.poll_job(job_id, interval=2, on_status=record)

        assert final.status == "completed"
        assert final.processing_time == 10_000
        assert env.clock.now() - t0 == 10  # not a poll earlier, not a poll later
        assert [at for at, _, _ in seen] == [0, 2, 4, 6, 8, 10]
        after_start = [(status, no_start) for at, status, no_start in seen if t0 + at >= started]
        assert after_start[0] == ("pending", True)  # the regressed answer
        assert [status for status, _ in after_start[1:]] == ["processing"] * 3 + ["completed"]
        assert [status for at, status, _ in seen if t0 + at < started] == ["pending"]


@pytest.mark.anyio
async def test_a_vanishing_job_is_a_not_found_error_after_its_time() -> None:
    async with MockbankrEnv(seed=1) as env:
        await add_rule(
            env,
            {
                "match": {"prompt": "price"},
                "action": {"job": {"outcome": "vanish", "after": 7, "latency": 60}},
            },
        )
        job_id = (await env.client.prompt(PRICE)).job_id
        t0 = env.clock.now()

        with pytest.raises(NotFoundError) as caught:
            await env.client.poll_job(job_id, interval=2)

        assert env.clock.now() - t0 == 8  # the first poll at or after 7 s
        assert (caught.value.status_code, caught.value.error) == (404, "Job not found")
        polls = await journal(env, path=f"/agent/job/{job_id}")
        assert [e["status"] for e in polls] == [200, 200, 200, 200, 404]  # a 404 is not retried


# -- times and probability ------------------------------------------------------------------


@pytest.mark.anyio
async def test_times_limits_how_often_a_rule_fires() -> None:
    async with MockbankrEnv(seed=1) as env:
        client = env.async_client(retry=RetryPolicy(max_retries=0))
        job_id = (await client.prompt(PRICE)).job_id
        await add_rule(
            env, on_status_reads({"respond": {"status": 503, "body": UNAVAILABLE}}, times=3)
        )

        outcomes = []
        for _ in range(5):
            try:
                await client.get_job_status(job_id)
            except ServerError as exc:
                outcomes.append(exc.status_code)
            else:
                outcomes.append(200)

        assert outcomes == [503, 503, 503, 200, 200]
        await client.aclose()


async def faulted_sequence(seed: int, reads: int = 24) -> list[bool]:
    """Which of ``reads`` status reads a ``probability: 0.5`` rule faulted, seen by the client."""
    async with MockbankrEnv(seed=seed) as env:
        client = env.async_client(retry=RetryPolicy(max_retries=0))
        job_id = (await client.prompt(PRICE)).job_id
        await add_rule(
            env, on_status_reads({"respond": {"status": 503, "body": UNAVAILABLE}}, probability=0.5)
        )
        faulted = []
        for _ in range(reads):
            try:
                await client.get_job_status(job_id)
            except ServerError:
                faulted.append(True)
            else:
                faulted.append(False)
        await client.aclose()
        polls = await journal(env, path=f"/agent/job/{job_id}")
        assert [e["fault"] == "respond" for e in polls] == faulted
        return faulted


@pytest.mark.anyio
async def test_a_seeded_probability_is_honoured_and_reproducible() -> None:
    first, again, other = (
        await faulted_sequence(seed=7),
        await faulted_sequence(seed=7),
        await faulted_sequence(seed=8),
    )
    assert first == again  # same seed, two fresh environments: the same faulted requests
    assert other != first
    for sequence in (first, other):
        assert 4 <= sum(sequence) <= 20  # p = 0.5 over 24 reads: neither never nor always


@pytest.mark.anyio
@pytest.mark.parametrize(("probability", "expected"), [(0.0, False), (1.0, True)])
async def test_probability_zero_never_fires_and_one_always_does(
    probability: float, expected: bool
) -> None:
    async with MockbankrEnv(seed=1) as env:
        job_id, _ = await finished_job(env, env.client)
        rule = on_status_reads({"delay": {"seconds": 3}}, probability=probability)
        await add_rule(env, rule)
        t0 = env.clock.now()
        for _ in range(5):
            await env.client.get_job_status(job_id)
        assert env.clock.now() - t0 == (15 if expected else 0)


# -- X-Mockbankr-* directives, for clients that can set headers --------------------------------


@pytest.mark.anyio
async def test_outcome_and_latency_directives_shape_the_job_the_client_polls() -> None:
    async with MockbankrEnv(seed=1) as env:
        headers = {"X-API-Key": env.api_key}
        failing = await env.http.post(
            "/agent/prompt",
            json={"prompt": PRICE},
            headers={**headers, "X-Mockbankr-Outcome": "failed"},
        )
        slow = await env.http.post(
            "/agent/prompt",
            json={"prompt": PRICE},
            headers={**headers, "X-Mockbankr-Latency": "12.5", "X-Mockbankr-Outcome": "completed"},
        )
        assert failing.status_code == slow.status_code == 202
        t0 = env.clock.now()

        failed = await env.client.poll_job(failing.json()["jobId"], interval=0.5)
        done = await env.client.poll_job(slow.json()["jobId"], interval=0.5)

        assert failed.status == "failed"
        assert failed.error  # the category's error text
        assert (done.status, done.processing_time) == ("completed", 12_500)
        assert env.clock.now() - t0 == 12.5
        prompts = await journal(env, path="/agent/prompt")
        assert [e["fault"] for e in prompts] == ["job", "job"]


def _check_503(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503
    assert response.json() == {
        "error": "Service unavailable",
        "message": "Injected fault (mockbankr)",
    }


def _check_429(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 429
    assert response.json() == {"error": "Rate limit exceeded", "message": "Retry after 60 seconds"}


def _check_delay(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 200
    assert response.json()["status"] in {"completed", "failed"}
    assert elapsed == 3


def _check_malformed(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 200
    with pytest.raises(ValueError):  # noqa: PT011 - json.JSONDecodeError is a ValueError
        response.json()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fault", "kind", "check"),
    [
        ("503", "respond", _check_503),
        ("429", "respond", _check_429),
        ("delay=3", "delay", _check_delay),
        ("malformed", "malformed", _check_malformed),
    ],
)
async def test_fault_directives_on_a_status_read(
    fault: str, kind: str, check: Callable[[httpx.Response, float], None]
) -> None:
    async with MockbankrEnv(seed=1) as env:
        job_id, _ = await finished_job(env, env.client)
        t0 = env.clock.now()

        response = await env.http.get(
            f"/agent/job/{job_id}",
            headers={"X-API-Key": env.api_key, "X-Mockbankr-Fault": fault},
            timeout=30,
        )

        check(response, env.clock.now() - t0)
        (entry,) = await journal(env, path=f"/agent/job/{job_id}")
        assert entry["fault"] == kind


@pytest.mark.anyio
async def test_hang_and_drop_directives_fail_the_request_not_the_answer() -> None:
    async with MockbankrEnv(seed=1) as env:
        job_id, _ = await finished_job(env, env.client)
        headers = {"X-API-Key": env.api_key}
        t0 = env.clock.now()
        with pytest.raises(httpx.ReadTimeout):
            await env.http.get(
                f"/agent/job/{job_id}", headers={**headers, "X-Mockbankr-Fault": "hang"}, timeout=12
            )
        assert env.clock.now() - t0 == 12
        with pytest.raises(httpx.RemoteProtocolError):
            await env.http.get(
                f"/agent/job/{job_id}", headers={**headers, "X-Mockbankr-Fault": "drop"}
            )
        faults = [e["fault"] for e in await journal(env, path=f"/agent/job/{job_id}")]
        assert faults == ["hang", "drop"]


@pytest.mark.anyio
async def test_a_directive_wins_over_a_rule_and_does_not_spend_it() -> None:
    async with MockbankrEnv(seed=1) as env:
        job_id, _ = await finished_job(env, env.client)
        await add_rule(
            env, on_status_reads({"respond": {"status": 503, "body": UNAVAILABLE}}, times=1)
        )
        t0 = env.clock.now()

        response = await env.http.get(
            f"/agent/job/{job_id}",
            headers={"X-API-Key": env.api_key, "X-Mockbankr-Fault": "delay=1"},
            timeout=30,
        )

        assert (response.status_code, env.clock.now() - t0) == (200, 1)
        (rule,) = (await env.http.get("/__mock/rules")).json()["rules"]
        assert rule["remaining"] == 1
        with pytest.raises(ServerError):  # the client sends no directive: the rule fires
            await env.async_client(retry=RetryPolicy(max_retries=0)).get_job_status(job_id)


# -- the daily limit --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_daily_limit_is_a_rate_limit_error_with_the_documented_fields() -> None:
    async with MockbankrEnv(seed=1, settings=Settings(seed=1, daily_limit=2)) as env:
        client = env.async_client(retry=EXACT)
        first_at = env.clock.now()
        await client.prompt(PRICE)
        env.advance(3600)
        await client.prompt(PRICE)
        t0 = env.clock.now()

        with pytest.raises(RateLimitError) as caught:
            await client.prompt(PRICE)

        limited = caught.value
        assert (limited.status_code, limited.error) == (429, "Daily limit exceeded")
        assert (limited.limit, limited.used) == (2, 2)
        assert limited.reset_at == utc(first_at + 86_400)  # 24 h from the first message
        assert limited.retry_after is None  # the documented 429 sends no Retry-After
        assert limited.message is not None
        assert limited.message.startswith("You have reached your daily API limit of 2 messages.")
        # The daily quota resets hours from now: the client does not retry it at all.
        posts = await journal(env, path="/agent/prompt")
        assert [e["status"] for e in posts] == [202, 202, 429]
        assert unix(posts[-1]["simTime"]) == t0
        assert await jobs_total(env) == 2
        env.clock.set(first_at + 86_400)
        assert (await client.prompt(PRICE)).job_id
        await client.aclose()


# -- the sync client ------------------------------------------------------------------------


def test_the_sync_client_retries_a_503_and_meets_a_hang_at_its_deadline() -> None:
    with MockbankrEnv(seed=1) as env:
        control = httpx.Client(
            transport=SyncClockTransport(env.app, env.clock), base_url="http://m"
        )
        client = env.sync_client(retry=EXACT)
        job_id = client.prompt(PRICE).job_id
        env.advance(60)
        unavailable = on_status_reads({"respond": {"status": 503, "body": UNAVAILABLE}}, times=2)
        assert control.post("/__mock/rules", json=unavailable).status_code == 201
        t0 = env.clock.now()

        assert client.poll_job(job_id).is_terminal
        assert env.clock.now() - t0 == 3
        assert control.post("/__mock/rules", json=on_status_reads({"hang": {}})).status_code == 201
        t1, wall1 = env.clock.now(), perf_seconds()
        with pytest.raises(PollTimeoutError):
            client.poll_job(job_id, timeout=40)
        assert env.clock.now() - t1 == pytest.approx(40, abs=1e-6)
        assert perf_seconds() - wall1 < WALL_BUDGET

        polls = control.get("/__mock/journal", params={"path": f"/agent/job/{job_id}"}).json()
        assert [e["status"] for e in polls["entries"][:3]] == [503, 503, 200]
        assert [e["fault"] for e in polls["entries"][3:]] == ["hang", "hang"]
        client.close()
        control.close()
