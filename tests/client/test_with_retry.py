"""with_retry: re-prompt while the job ends badly, count paid jobs, stop on errors."""

from __future__ import annotations

import pytest
from bankr_client import (
    BadRequestError,
    ConfigError,
    JobCancelledError,
    JobFailedError,
    JobStatusName,
    PollTimeoutError,
    RetryPolicy,
    RetryResult,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fakeapi import FakeBankr, RecordingClock, Step, accepted, drive, error, job


def test_retries_until_completed(flavour: str, clock: RecordingClock):
    fake = FakeBankr(
        clock,
        prompt=[accepted("job_1"), accepted("job_2"), accepted("job_3")],
        status=[job("failed", "job_1"), job("cancelled", "job_2"), job("completed", "job_3")],
    )
    result: RetryResult = drive(flavour, fake, lambda c: c.with_retry("swap 1 ETH"))
    assert result.succeeded
    assert result.error is None
    assert result.paid_jobs == 3
    assert [a.job_id for a in result.attempts] == ["job_1", "job_2", "job_3"]
    assert [a.status.status if a.status else None for a in result.attempts] == [
        JobStatusName.FAILED,
        JobStatusName.CANCELLED,
        JobStatusName.COMPLETED,
    ]
    assert result.final is not None
    assert result.final.job_id == "job_3"
    assert result.unwrap() is result.final
    delays = [a.delay for a in result.attempts]
    assert delays[0] == 0.0
    assert 0.5 <= delays[1] <= 1.0
    assert 1.0 <= delays[2] <= 2.0
    assert [s for _, s in clock.sleeps] == delays[1:]


def test_gives_up_after_max_retries(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, status=[job("failed")])
    policy = RetryPolicy(jitter=False)
    result = drive(flavour, fake, lambda c: c.with_retry("swap", max_retries=3, backoff=policy))
    assert len(result.attempts) == 4
    assert result.paid_jobs == 4
    assert len(fake.of("prompt")) == 4
    assert not result.succeeded
    assert [a.delay for a in result.attempts] == [0.0, 1.0, 2.0, 4.0]
    with pytest.raises(JobFailedError):
        result.unwrap()


def test_a_cancelled_final_status_unwraps_to_job_cancelled(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, status=[job("cancelled")])
    result = drive(flavour, fake, lambda c: c.with_retry("swap", max_retries=0))
    assert len(result.attempts) == 1
    with pytest.raises(JobCancelledError):
        result.unwrap()


def test_a_rejected_prompt_ends_the_retries_unpaid(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, prompt=[error(400, "Prompt too long")])
    result = drive(flavour, fake, lambda c: c.with_retry("x" * 20_000))
    assert result.paid_jobs == 0
    assert isinstance(result.error, BadRequestError)
    assert len(result.attempts) == 1
    assert result.attempts[0].job_id is None
    with pytest.raises(BadRequestError):
        result.unwrap()


def test_a_poll_timeout_ends_the_retries_without_a_new_prompt(flavour: str, clock: RecordingClock):
    fake = FakeBankr(
        clock,
        prompt=[accepted("job_1"), accepted("job_2"), accepted("job_3")],
        status=[job("failed", "job_1"), job("processing", "job_2")],
    )
    result = drive(flavour, fake, lambda c: c.with_retry("swap", timeout=20.0))
    assert isinstance(result.error, PollTimeoutError)
    assert result.paid_jobs == 2
    assert len(fake.of("prompt")) == 2
    assert result.attempts[-1].job_id == "job_2"
    assert result.final is not None
    assert result.final.status is JobStatusName.FAILED


def test_max_retries_is_validated(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock)
    with pytest.raises(ConfigError):
        drive(flavour, fake, lambda c: c.with_retry("x", max_retries=-1))
    assert fake.calls == []


outcome = st.sampled_from(["completed", "failed", "cancelled", "processing", "404"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flavour=st.sampled_from(["sync", "async"]),
    outcomes=st.lists(outcome, min_size=1, max_size=8),
    max_retries=st.integers(0, 5),
    prompt_503s=st.integers(0, 2),
)
def test_attempts_are_bounded_and_every_accepted_prompt_is_counted(
    flavour: str, outcomes: list[str], max_retries: int, prompt_503s: int
):
    clock = RecordingClock()
    status: list[Step] = [
        error(404, "Job not found") if o == "404" else job(o, f"job_{n}")
        for n, o in enumerate(outcomes)
    ]
    prompts: list[Step] = [error(503)] * prompt_503s + [
        accepted(f"job_{n}") for n in range(len(outcomes) + 1)
    ]
    fake = FakeBankr(clock, prompt=prompts, status=status)
    result: RetryResult = drive(
        flavour,
        fake,
        lambda c: c.with_retry("swap", max_retries=max_retries, timeout=10.0, max_attempts=50),
    )
    accepted_prompts = sum(1 for step in fake.served["prompt"] if step.maybe_accepted)
    assert len(result.attempts) <= max_retries + 1
    assert result.paid_jobs == accepted_prompts
    assert result.paid_jobs <= len(result.attempts)
    if result.succeeded:
        assert result.attempts[-1].status is not None
        assert result.attempts[-1].status.status is JobStatusName.COMPLETED
    for earlier in result.attempts[:-1]:
        # Only a terminal, non-completed job leads to another prompt.
        assert earlier.error is None
        assert earlier.status is not None
        assert earlier.status.status in (JobStatusName.FAILED, JobStatusName.CANCELLED)
    for number, attempt in enumerate(result.attempts):
        cap = min(2.0**number / 2, 30.0)
        assert attempt.number == number
        assert (attempt.delay == 0.0) if number == 0 else (cap / 2 <= attempt.delay <= cap)
