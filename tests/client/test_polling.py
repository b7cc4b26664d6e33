"""poll_job and prompt_and_wait: terminal statuses, attempts, deadline, retries while polling."""

from __future__ import annotations

import httpx
import pytest
from bankr_client import (
    APIError,
    JobCancelledError,
    JobFailedError,
    JobStatus,
    JobStatusName,
    NotFoundError,
    PollAttemptsExceededError,
    PollTimeoutError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fakeapi import (
    Answer,
    Fail,
    FakeBankr,
    Hang,
    RecordingClock,
    Step,
    accepted,
    drive,
    error,
    job,
)

NON_TERMINAL = ["pending", "processing"]
TERMINAL = ["completed", "failed", "cancelled"]
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NO_JITTER = RetryPolicy(jitter=False)


@pytest.mark.parametrize("final", TERMINAL)
def test_poll_returns_on_every_terminal_status(flavour: str, clock: RecordingClock, final: str):
    fake = FakeBankr(clock, status=[job("pending"), job("processing"), job(final)])
    result = drive(flavour, fake, lambda c: c.poll_job("job_1", interval=2.0))
    assert result.status == JobStatusName(final)
    assert len(fake.of("status")) == 3
    assert [s for _, s in clock.sleeps] == [2.0, 2.0]


@PROPS
@given(
    flavour=st.sampled_from(["sync", "async"]),
    before=st.lists(st.sampled_from(NON_TERMINAL), max_size=12),
    final=st.sampled_from(TERMINAL),
    after=st.lists(st.sampled_from(NON_TERMINAL + TERMINAL), max_size=3),
    interval=st.floats(0.0, 5.0),
)
def test_poll_returns_exactly_at_the_first_terminal_status(
    flavour: str, before: list[str], final: str, after: list[str], interval: float
):
    clock = RecordingClock()
    script = [job(s) for s in [*before, final, *after]]
    fake = FakeBankr(clock, status=script)
    result = drive(
        flavour, fake, lambda c: c.poll_job("job_1", interval=interval, max_attempts=100)
    )
    assert result.status == JobStatusName(final)
    assert len(fake.of("status")) == len(before) + 1
    assert len(clock.sleeps) == len(before)


@PROPS
@given(
    flavour=st.sampled_from(["sync", "async"]),
    max_attempts=st.integers(1, 20),
    failures=st.lists(st.sampled_from(["ok", "429", "503", "connect"]), max_size=25),
)
def test_poll_never_sends_more_than_max_attempts_requests(
    flavour: str, max_attempts: int, failures: list[str]
):
    clock = RecordingClock()
    steps = {
        "ok": job("processing"),
        "429": error(429, "Rate limit exceeded"),
        "503": error(503, "Unavailable"),
        "connect": Fail(httpx.ConnectError),
    }
    fake = FakeBankr(clock, status=[steps[f] for f in failures] + [job("processing")])
    policy = RetryPolicy(max_retries=100, backoff_base=0.5, backoff_max=1.0, jitter=False)
    with pytest.raises(PollAttemptsExceededError) as info:
        drive(
            flavour,
            fake,
            lambda c: c.poll_job("job_1", interval=1.0, max_attempts=max_attempts, timeout=1e6),
            retry=policy,
        )
    assert len(fake.of("status")) == max_attempts
    assert info.value.attempts == max_attempts
    assert info.value.job_id == "job_1"


def test_attempts_exceeded_carries_the_last_status(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, status=[job("pending"), job("processing")])
    with pytest.raises(PollAttemptsExceededError) as info:
        drive(flavour, fake, lambda c: c.poll_job("job_1", max_attempts=3))
    assert info.value.last_status is not None
    assert info.value.last_status.status is JobStatusName.PROCESSING
    assert len(clock.sleeps) == 2  # no pointless sleep after the last allowed request


@PROPS
@given(
    flavour=st.sampled_from(["sync", "async"]),
    interval=st.floats(0.1, 10.0),
    timeout=st.floats(0.5, 60.0),
    latency=st.floats(0.0, 3.0),
    request_timeout=st.floats(0.5, 30.0),
)
def test_poll_never_passes_the_deadline(
    flavour: str, interval: float, timeout: float, latency: float, request_timeout: float
):
    clock = RecordingClock()
    fake = FakeBankr(clock, status=[job("processing")], latency=latency)
    start = clock.now()
    deadline = start + timeout
    with pytest.raises(PollTimeoutError) as info:
        drive(
            flavour,
            fake,
            lambda c: c.poll_job("job_1", interval=interval, max_attempts=10_000, timeout=timeout),
            timeout=request_timeout,
        )
    # Raised no later than the deadline plus one request's time.
    assert clock.now() <= deadline + latency + 1e-9
    assert info.value.timeout == timeout
    assert info.value.last_status is not None
    for at, seconds in clock.sleeps:
        assert at + seconds <= deadline + 1e-9
        assert seconds <= interval + 1e-9
    for call in fake.of("status"):
        assert call.start < deadline
        assert call.read_timeout is not None
        assert call.read_timeout <= min(request_timeout, deadline - call.start) + 1e-9


TRANSIENT: list[Step] = [
    job("pending"),
    job("processing"),
    error(429, headers={"Retry-After": "4"}),
    error(429, headers={"Retry-After": "400"}),
    error(503),
    error(500),
    Fail(httpx.ConnectError),
    Fail(httpx.ReadTimeout),
    Hang(7.0, job("processing")),
    Hang(1e6, job("processing")),
]


@PROPS
@given(
    flavour=st.sampled_from(["sync", "async"]),
    script=st.lists(st.sampled_from(TRANSIENT), min_size=1, max_size=30),
    interval=st.floats(0.1, 10.0),
    timeout=st.floats(0.5, 60.0),
    latency=st.floats(0.0, 3.0),
)
def test_retries_and_hangs_never_pass_the_deadline_either(
    flavour: str, script: list[Step], interval: float, timeout: float, latency: float
):
    clock = RecordingClock()
    fake = FakeBankr(clock, status=script, latency=latency)
    deadline = clock.now() + timeout
    policy = RetryPolicy(max_retries=1000, backoff_base=0.5, backoff_max=20.0)
    with pytest.raises(PollTimeoutError):
        drive(
            flavour,
            fake,
            lambda c: c.poll_job("job_1", interval=interval, max_attempts=10_000, timeout=timeout),
            retry=policy,
        )
    assert clock.now() <= deadline + latency + 1e-9
    for at, seconds in clock.sleeps:
        assert at + seconds <= deadline + 1e-9
    for call in fake.of("status"):
        assert call.start < deadline
        assert call.read_timeout is not None
        assert call.start + call.read_timeout <= deadline + 1e-9


@pytest.mark.parametrize("hang", [50.0, 1e6])
def test_a_hung_request_is_cut_at_the_deadline(flavour: str, clock: RecordingClock, hang: float):
    fake = FakeBankr(clock, status=[job("processing"), Hang(hang, job("completed"))])
    start = clock.now()
    with pytest.raises(PollTimeoutError) as info:
        drive(
            flavour,
            fake,
            lambda c: c.poll_job("job_1", interval=2.0, timeout=10.0),
            timeout=300.0,
        )
    # The hang started at t=2 with 8 s left: its timeout was 8 s, so it ends exactly at t=10.
    assert clock.now() == pytest.approx(start + 10.0)
    assert fake.of("status")[1].read_timeout == pytest.approx(8.0)
    assert isinstance(info.value.__cause__, RequestTimeoutError)


def test_a_hang_shorter_than_the_timeout_is_waited_for(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, status=[Hang(5.0, job("completed"))])
    result = drive(flavour, fake, lambda c: c.poll_job("job_1", timeout=60.0), timeout=30.0)
    assert result.status is JobStatusName.COMPLETED


def test_poll_retries_429_honouring_retry_after(flavour: str, clock: RecordingClock):
    fake = FakeBankr(
        clock,
        status=[
            job("pending"),
            error(429, "Rate limit exceeded", headers={"Retry-After": "7"}),
            job("completed"),
        ],
    )
    result = drive(flavour, fake, lambda c: c.poll_job("job_1", interval=2.0), retry=NO_JITTER)
    assert result.status is JobStatusName.COMPLETED
    assert [s for _, s in clock.sleeps] == [2.0, 7.0]


def test_poll_retry_after_is_capped_by_the_time_left(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, status=[error(429, headers={"Retry-After": "25"})])
    start = clock.now()
    with pytest.raises(PollTimeoutError) as info:
        drive(flavour, fake, lambda c: c.poll_job("job_1", timeout=10.0), retry=NO_JITTER)
    assert [s for _, s in clock.sleeps] == [10.0]
    assert clock.now() == start + 10.0
    assert isinstance(info.value.__cause__, RateLimitError)
    assert len(fake.of("status")) == 1


def test_poll_gives_up_when_the_retry_policy_does(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, status=[error(502, "Bad gateway")])
    with pytest.raises(ServerError) as info:
        drive(flavour, fake, lambda c: c.poll_job("job_1"), retry=RetryPolicy(max_retries=2))
    assert info.value.status_code == 502
    assert len(fake.of("status")) == 3


def test_poll_backoff_resets_after_a_good_status(flavour: str, clock: RecordingClock):
    fake = FakeBankr(
        clock,
        status=[error(500), error(500), job("processing"), error(500), job("completed")],
    )
    drive(flavour, fake, lambda c: c.poll_job("job_1", interval=3.0), retry=NO_JITTER)
    assert [s for _, s in clock.sleeps] == [1.0, 2.0, 3.0, 1.0]


@pytest.mark.parametrize(
    "answer", [error(400), error(401), error(402), error(403), error(404, "Job not found")]
)
def test_poll_raises_non_retryable_errors_at_once(
    flavour: str, clock: RecordingClock, answer: Answer
):
    fake = FakeBankr(clock, status=[job("pending"), answer, job("completed")])
    with pytest.raises(APIError) as info:
        drive(flavour, fake, lambda c: c.poll_job("job_1"))
    assert info.value.status_code == answer.status
    assert len(fake.of("status")) == 2


def test_an_error_body_on_200_is_never_a_status(flavour: str, clock: RecordingClock):
    body = {"error": "Job not found", "message": "No job found with ID job_1"}
    fake = FakeBankr(clock, status=[Answer(200, body), job("completed")])
    with pytest.raises(ProtocolError):
        drive(flavour, fake, lambda c: c.poll_job("job_1"))
    assert len(fake.of("status")) == 1


def test_a_404_is_never_polled_as_a_status(flavour: str, clock: RecordingClock):
    # The official SDK polls a 404 body until max attempts; we raise at once.
    fake = FakeBankr(clock, status=[error(404, "Job not found", "No job found with ID x")])
    with pytest.raises(NotFoundError):
        drive(flavour, fake, lambda c: c.poll_job("x"))
    assert len(fake.of("status")) == 1


def test_on_status_sees_every_status_read(flavour: str, clock: RecordingClock):
    seen: list[JobStatusName] = []
    fake = FakeBankr(clock, status=[job("pending"), error(503), job("processing"), job("failed")])

    def record(status: JobStatus) -> None:
        seen.append(status.status)

    drive(flavour, fake, lambda c: c.poll_job("job_1", on_status=record))
    assert seen == [JobStatusName.PENDING, JobStatusName.PROCESSING, JobStatusName.FAILED]


@pytest.mark.parametrize(
    ("final", "exc"), [("failed", JobFailedError), ("cancelled", JobCancelledError)]
)
def test_raise_on_failure(flavour: str, clock: RecordingClock, final: str, exc: type):
    fake = FakeBankr(clock, status=[job("processing"), job(final)])
    with pytest.raises(exc) as info:
        drive(flavour, fake, lambda c: c.prompt_and_wait("hi", raise_on_failure=True))
    assert info.value.status.status == JobStatusName(final)
    fake = FakeBankr(clock, status=[job(final)])
    result = drive(flavour, fake, lambda c: c.prompt_and_wait("hi"))
    assert result.status == JobStatusName(final)


def test_prompt_and_wait_timeout_covers_the_prompt(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, prompt=[Hang(4.0, accepted())], status=[job("processing")])
    start = clock.now()
    with pytest.raises(PollTimeoutError) as info:
        drive(flavour, fake, lambda c: c.prompt_and_wait("hi", interval=1.0, timeout=10.0))
    assert clock.now() <= start + 10.0
    assert info.value.job_id == "job_1"
    assert fake.of("status")[0].start == pytest.approx(start + 4.0)


def test_prompt_and_wait_polls_the_accepted_job(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, prompt=[accepted("job_xyz")], status=[job("completed", "job_xyz")])
    result = drive(flavour, fake, lambda c: c.prompt_and_wait("hi"))
    assert result.job_id == "job_xyz"
    assert fake.of("status")[0].request.url.path == "/agent/job/job_xyz"


@pytest.mark.parametrize(
    "kwargs",
    [{"interval": -1.0}, {"max_attempts": 0}, {"timeout": 0.0}, {"timeout": float("nan")}],
)
def test_poll_rejects_nonsense_before_any_request(
    flavour: str, clock: RecordingClock, kwargs: dict[str, float]
):
    fake = FakeBankr(clock)
    with pytest.raises(ValueError, match="must be"):
        drive(flavour, fake, lambda c: c.poll_job("job_1", **kwargs))
    assert fake.calls == []


def test_prompt_retries_that_outlast_the_deadline_end_in_a_poll_timeout(
    flavour: str, clock: RecordingClock
):
    fake = FakeBankr(clock, prompt=[error(429, headers={"Retry-After": "100"}), accepted()])
    start = clock.now()
    with pytest.raises(PollTimeoutError) as info:
        drive(flavour, fake, lambda c: c.prompt_and_wait("hi", timeout=10.0), retry=NO_JITTER)
    assert info.value.job_id is None
    assert isinstance(info.value.__cause__, RateLimitError)
    assert clock.now() == start + 10.0
    assert len(fake.of("prompt")) == 1


def test_a_prompt_cut_by_the_deadline_is_not_resent(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, prompt=[Hang(100.0, accepted()), accepted()])
    start = clock.now()
    with pytest.raises(RequestTimeoutError):
        drive(flavour, fake, lambda c: c.prompt_and_wait("hi", timeout=10.0), timeout=60.0)
    assert clock.now() == start + 10.0
    assert len(fake.of("prompt")) == 1
