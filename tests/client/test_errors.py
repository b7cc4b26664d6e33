"""The error tree, and how HTTP answers and httpx failures map onto it."""

from __future__ import annotations

import builtins
import datetime as dt
import inspect

import bankr_client
import httpx
import pytest
from bankr_client import errors
from bankr_client._wire import error_from_response, retry_after_seconds, transport_error
from bankr_client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BankrError,
    ConfigError,
    JobCancelledError,
    JobError,
    JobFailedError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    PollAttemptsExceededError,
    PollError,
    PollTimeoutError,
    ProtocolError,
    RateLimitError,
    RequestNotSentError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)


def test_every_error_derives_from_bankr_error_and_shadows_no_builtin():
    classes = [obj for _, obj in inspect.getmembers(errors, inspect.isclass)]
    exported = [c for c in classes if c.__module__ == errors.__name__]
    assert len(exported) == len(errors.__all__)
    for cls in exported:
        assert issubclass(cls, BankrError)
        assert not hasattr(builtins, cls.__name__)
        assert cls.__name__ in (errors.__doc__ or "")  # drawn in the tree


def test_the_tree():
    assert issubclass(ConfigError, ValueError)
    for cls in (BadRequestError, AuthenticationError, PaymentRequiredError):
        assert issubclass(cls, APIError)
    for cls in (PermissionDeniedError, NotFoundError, RateLimitError, ServerError):
        assert issubclass(cls, APIError)
    assert issubclass(RequestNotSentError, TransportError)
    assert issubclass(RequestTimeoutError, TransportError)
    assert issubclass(PollTimeoutError, PollError)
    assert issubclass(PollAttemptsExceededError, PollError)
    assert issubclass(JobFailedError, JobError)
    assert issubclass(JobCancelledError, JobError)
    assert not issubclass(TransportError, APIError)
    assert not issubclass(ProtocolError, APIError)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, PaymentRequiredError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
        (409, APIError),
        (418, APIError),
        (302, APIError),
    ],
)
def test_status_codes_map_to_classes(status: int, cls: type[APIError]):
    exc = error_from_response(httpx.Response(status, json={"error": "E", "message": "M"}))
    assert type(exc) is cls
    assert (exc.status_code, exc.error, exc.message) == (status, "E", "M")
    assert exc.body == {"error": "E", "message": "M"}
    assert "E" in str(exc)


def test_the_daily_limit_429():
    body = {
        "error": "Daily limit exceeded",
        "message": "You have reached your daily API limit of 100 messages.",
        "resetAt": 1736937000000,
        "limit": 100,
        "used": 100,
    }
    exc = error_from_response(httpx.Response(429, json=body, headers={"Retry-After": "60"}))
    assert isinstance(exc, RateLimitError)
    assert exc.retry_after == 60.0
    assert exc.reset_at == dt.datetime(2025, 1, 15, 10, 30, tzinfo=dt.UTC)
    assert (exc.limit, exc.used) == (100, 100)


def test_a_429_without_headers_or_counters():
    exc = error_from_response(httpx.Response(429, json={"error": "Rate limit exceeded"}))
    assert isinstance(exc, RateLimitError)
    assert (exc.retry_after, exc.reset_at, exc.limit, exc.used) == (None, None, None, None)


def test_a_503_carries_retry_after():
    exc = error_from_response(httpx.Response(503, text="busy", headers={"Retry-After": "5"}))
    assert isinstance(exc, ServerError)
    assert exc.retry_after == 5.0
    assert exc.message == "busy"
    assert exc.error is None


DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "inf"}, None),
        (
            {
                "Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT",
                "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
            },
            30.0,
        ),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, None),
    ],
)
def test_retry_after_parsing(headers: dict[str, str], expected: float | None):
    assert retry_after_seconds(httpx.Headers(headers)) == expected


def test_the_402_challenge_is_kept():
    body = {"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [{"a": 1}]}
    exc = error_from_response(httpx.Response(402, json=body))
    assert isinstance(exc, PaymentRequiredError)
    assert exc.accepts == [{"a": 1}]
    assert exc.x402_version == 1
    assert exc.error == "X-PAYMENT header is required"


def test_a_non_json_error_body_still_maps_by_status():
    exc = error_from_response(httpx.Response(404, content=b"<h1>Not Found</h1>"))
    assert isinstance(exc, NotFoundError)
    assert exc.error is None
    assert exc.message == "<h1>Not Found</h1>"
    assert exc.body == {}


@pytest.mark.parametrize(
    ("exc", "cls", "sent"),
    [
        (httpx.ConnectError("refused"), RequestNotSentError, False),
        (httpx.ConnectTimeout("slow"), RequestNotSentError, False),
        (httpx.PoolTimeout("pool"), RequestNotSentError, False),
        (httpx.ReadTimeout("slow"), RequestTimeoutError, True),
        (httpx.WriteTimeout("slow"), RequestTimeoutError, True),
        (httpx.ReadError("reset"), TransportError, True),
        (httpx.RemoteProtocolError("dropped"), TransportError, True),
    ],
)
def test_httpx_failures_map_by_whether_the_request_was_sent(
    exc: httpx.RequestError, cls: type[TransportError], sent: bool
):
    mapped = transport_error(exc)
    assert type(mapped) is cls
    assert mapped.sent is sent
    assert type(exc).__name__ in str(mapped)


def test_job_errors_carry_the_final_status():
    status = bankr_client.JobStatus.from_dict(
        {"jobId": "job_1", "status": "failed", "error": "Insufficient balance"}
    )
    exc = JobFailedError(status)
    assert exc.status is status
    assert exc.job_id == "job_1"
    assert "Insufficient balance" in str(exc)


def test_poll_errors_carry_context():
    exc = PollTimeoutError("late", job_id="job_1", last_status=None, timeout=30.0)
    assert (exc.job_id, exc.last_status, exc.timeout) == ("job_1", None, 30.0)
    exc2 = PollAttemptsExceededError("many", job_id="job_1", last_status=None, attempts=150)
    assert exc2.attempts == 150
