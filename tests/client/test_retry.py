"""RetryPolicy: validation, and decide() as a pure function."""

from __future__ import annotations

import random

import pytest
from bankr_client import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BankrError,
    ConfigError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RequestNotSentError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from hypothesis import given
from hypothesis import strategies as st


def rate_limited(retry_after: float | None = None) -> RateLimitError:
    return RateLimitError(429, "Rate limit exceeded", None, retry_after=retry_after)


def server(status: int, retry_after: float | None = None) -> ServerError:
    return ServerError(status, None, None, retry_after=retry_after)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"backoff_base": -0.1},
        {"backoff_base": float("nan")},
        {"backoff_max": float("inf")},
        {"backoff_base": 5.0, "backoff_max": 1.0},
        {"jitter": "yes"},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, object]):
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert issubclass(ConfigError, ValueError)


def test_the_policy_is_frozen():
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_retries = 5  # type: ignore[misc]


def test_defaults():
    assert RetryPolicy() == RetryPolicy(
        max_retries=3, backoff_base=1.0, backoff_max=30.0, jitter=True
    )


NEVER = [
    BadRequestError(400, None, None),
    AuthenticationError(401, None, None),
    PaymentRequiredError(402, None, None),
    PermissionDeniedError(403, None, None),
    NotFoundError(404, None, None),
    APIError(409, None, None),
    ProtocolError("garbage"),
]


@pytest.mark.parametrize("err", NEVER)
@pytest.mark.parametrize("is_read", [True, False])
def test_client_errors_are_never_retried(err: BankrError, is_read: bool):
    assert RetryPolicy().decide(0, err, is_read=is_read, sent=True, remaining=None) is None


READ_RETRIES = [
    rate_limited(),
    server(500),
    server(502),
    server(503),
    server(504),
    TransportError("reset"),
    RequestTimeoutError("read timeout"),
    RequestNotSentError("refused"),
]


@pytest.mark.parametrize("err", READ_RETRIES)
def test_reads_retry_429_5xx_and_transport_errors(err: BankrError):
    sent = not isinstance(err, RequestNotSentError)
    policy = RetryPolicy(jitter=False)
    assert policy.decide(0, err, is_read=True, sent=sent, remaining=None) == 1.0


@pytest.mark.parametrize(
    ("err", "sent", "retried"),
    [
        (rate_limited(), True, True),
        (server(503), True, True),
        (RequestNotSentError("refused"), False, True),
        (server(500), True, False),
        (server(502), True, False),
        (server(504), True, False),
        (RequestTimeoutError("read timeout"), True, False),
        (TransportError("connection reset"), True, False),
    ],
)
def test_prompts_retry_only_when_provably_not_accepted(err: BankrError, sent: bool, retried: bool):
    decision = RetryPolicy().decide(0, err, is_read=False, sent=sent, remaining=None)
    assert (decision is not None) is retried


def test_retry_after_replaces_the_backoff_within_the_caps():
    policy = RetryPolicy(backoff_max=30.0)
    err = rate_limited(7.0)
    assert policy.decide(0, err, is_read=True, sent=True, remaining=None) == 7.0
    assert policy.decide(0, err, is_read=True, sent=True, remaining=5.0) == 5.0
    huge = rate_limited(3600.0)
    assert policy.decide(0, huge, is_read=True, sent=True, remaining=None) == 30.0
    assert policy.decide(2, server(503, 2.0), is_read=False, sent=True, remaining=None) == 2.0


def test_no_retry_once_the_deadline_passed():
    policy = RetryPolicy()
    assert policy.decide(0, server(500), is_read=True, sent=True, remaining=0.0) is None
    assert policy.decide(0, server(500), is_read=True, sent=True, remaining=-1.0) is None


errors = st.sampled_from(READ_RETRIES + NEVER)
policies = st.builds(
    RetryPolicy,
    max_retries=st.integers(0, 8),
    backoff_base=st.floats(0.0, 5.0),
    backoff_max=st.floats(5.0, 120.0),
    jitter=st.booleans(),
)


@given(
    policy=policies,
    attempt=st.integers(0, 2000),
    err=errors,
    is_read=st.booleans(),
    remaining=st.none() | st.floats(-10.0, 1000.0),
    seed=st.integers(0, 2**32),
)
def test_decide_respects_every_bound(
    policy: RetryPolicy,
    attempt: int,
    err: BankrError,
    is_read: bool,
    remaining: float | None,
    seed: int,
):
    sent = not isinstance(err, RequestNotSentError)
    delay = policy.decide(
        attempt, err, is_read=is_read, sent=sent, remaining=remaining, rng=random.Random(seed)
    )
    if attempt >= policy.max_retries or (remaining is not None and remaining <= 0):
        assert delay is None
    if not policy.retryable(err, is_read=is_read, sent=sent):
        assert delay is None
    if delay is None:
        return
    assert 0.0 <= delay <= policy.backoff_max
    if remaining is not None:
        assert delay <= remaining
    retry_after = getattr(err, "retry_after", None)
    if retry_after is None:
        cap = min(policy.backoff_base * 2.0 ** min(attempt, 1000), policy.backoff_max)
        if remaining is None or remaining >= cap:
            low = cap / 2 if policy.jitter else cap
            assert low <= delay <= cap


@given(
    policy=policies,
    retry_after=st.floats(0.0, 10_000.0),
    remaining=st.none() | st.floats(0.001, 10_000.0),
    attempt=st.integers(0, 7),
)
def test_retry_after_is_honoured_up_to_the_caps(
    policy: RetryPolicy, retry_after: float, remaining: float | None, attempt: int
):
    err = rate_limited(retry_after)
    delay = policy.decide(attempt, err, is_read=True, sent=True, remaining=remaining)
    if attempt >= policy.max_retries:
        assert delay is None
        return
    expected = min(retry_after, policy.backoff_max, remaining if remaining else float("inf"))
    assert delay == expected


@given(policy=policies, seed=st.integers(0, 2**32))
def test_backoff_grows_exponentially_until_the_cap(policy: RetryPolicy, seed: int):
    rng = random.Random(seed)
    for attempt in range(12):
        cap = min(policy.backoff_base * 2**attempt, policy.backoff_max)
        delay = policy.backoff(attempt, rng)
        if policy.jitter:
            assert cap / 2 <= delay <= cap
        else:
            assert delay == cap


@given(seed=st.integers(0, 2**32))
def test_jitter_is_drawn_from_the_injected_rng(seed: int):
    policy = RetryPolicy()
    first = [policy.backoff(n, random.Random(seed)) for n in range(5)]
    again = [policy.backoff(n, random.Random(seed)) for n in range(5)]
    assert first == again


def test_default_backoff_is_one_two_four_seconds_with_equal_jitter():
    rng = random.Random(1)
    policy = RetryPolicy()
    for attempt, cap in enumerate([1.0, 2.0, 4.0]):
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        assert min(delays) >= cap / 2
        assert max(delays) <= cap
        assert max(delays) - min(delays) > cap / 4  # really jittered


def test_retry_count_bounds_the_attempts():
    policy = RetryPolicy(max_retries=2)
    err = server(500)
    decisions = [policy.decide(n, err, is_read=True, sent=True, remaining=None) for n in range(5)]
    assert [d is not None for d in decisions] == [True, True, False, False, False]


@pytest.mark.parametrize("is_read", [True, False])
def test_the_daily_quota_is_never_retried(is_read: bool):
    import datetime as dt

    reset = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    quota = RateLimitError(429, "Daily limit exceeded", "...", reset_at=reset, limit=100, used=100)
    policy = RetryPolicy()
    assert policy.decide(0, quota, is_read=is_read, sent=True, remaining=None) is None
    throttled = RateLimitError(429, "Rate limit exceeded", "...", reset_at=reset, retry_after=2.0)
    assert policy.decide(0, throttled, is_read=is_read, sent=True, remaining=None) == 2.0
