"""prompt, get_job_status, cancel_job: the wire requests, retries, and configuration."""

from __future__ import annotations

import contextlib
import json

import httpx
import pytest
from bankr_client import (
    AsyncBankrClient,
    BadRequestError,
    BankrClient,
    BankrError,
    ConfigError,
    JobStatusName,
    RequestNotSentError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from .fakeapi import (
    BASE,
    KEY,
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

NO_JITTER = RetryPolicy(jitter=False)


def test_prompt_sends_the_documented_request(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock)
    result = drive(flavour, fake, lambda c: c.prompt("what is the price of ETH?"))
    request = fake.of("prompt")[0].request
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/agent/prompt"
    assert request.headers["X-API-Key"] == KEY
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"prompt": "what is the price of ETH?"}
    assert (result.job_id, result.thread_id, result.status) == ("job_1", "thr_1", "pending")
    assert result.message == "Job submitted successfully"


def test_prompt_sends_thread_id_when_given(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock)
    drive(flavour, fake, lambda c: c.prompt("and BTC?", thread_id="thr_9"))
    assert json.loads(fake.of("prompt")[0].request.content) == {
        "prompt": "and BTC?",
        "threadId": "thr_9",
    }


def test_get_job_status_path_and_headers(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, status=[job("processing", "job/../x")])
    result = drive(flavour, fake, lambda c: c.get_job_status("job/../x"))
    request = fake.of("status")[0].request
    assert request.method == "GET"
    assert request.url.raw_path == b"/agent/job/job%2F..%2Fx"
    assert request.headers["X-API-Key"] == KEY
    assert result.status is JobStatusName.PROCESSING


def test_get_job_status_retries_5xx_and_connection_errors(flavour: str, clock: RecordingClock):
    fake = FakeBankr(
        clock,
        status=[error(500), Fail(httpx.ReadError), Fail(httpx.ConnectError), job("completed")],
    )
    result = drive(flavour, fake, lambda c: c.get_job_status("job_1"), retry=NO_JITTER)
    assert result.status is JobStatusName.COMPLETED
    assert [s for _, s in clock.sleeps] == [1.0, 2.0, 4.0]


def test_transport_errors_keep_their_cause(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, status=[Fail(httpx.ReadError)])
    with pytest.raises(TransportError) as info:
        drive(flavour, fake, lambda c: c.get_job_status("job_1"), retry=RetryPolicy(max_retries=0))
    assert isinstance(info.value.__cause__, httpx.ReadError)
    assert info.value.sent is True


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (error(503, "Unavailable"), "503"),
        (error(429, "Rate limit exceeded", headers={"Retry-After": "3"}), "429"),
        (Fail(httpx.ConnectError), "connect"),
        (Fail(httpx.ConnectTimeout), "connect"),
    ],
)
def test_prompt_is_retried_when_provably_not_accepted(
    flavour: str, clock: RecordingClock, answer: Step, kind: str
):
    fake = FakeBankr(clock, prompt=[answer, accepted("job_2")])
    result = drive(flavour, fake, lambda c: c.prompt("hi"), retry=NO_JITTER)
    assert result.job_id == "job_2"
    assert len(fake.of("prompt")) == 2
    assert [s for _, s in clock.sleeps] == [3.0 if kind == "429" else 1.0]


@pytest.mark.parametrize(
    ("answer", "exc"),
    [
        (error(500), ServerError),
        (error(502), ServerError),
        (error(504), ServerError),
        (Fail(httpx.ReadTimeout), RequestTimeoutError),
        (Fail(httpx.RemoteProtocolError), TransportError),
        (Hang(100.0, accepted()), RequestTimeoutError),
    ],
)
def test_prompt_is_never_resent_once_it_may_have_been_accepted(
    flavour: str, clock: RecordingClock, answer: Step, exc: type[Exception]
):
    fake = FakeBankr(clock, prompt=[answer, accepted("job_2")])
    with pytest.raises(exc):
        drive(flavour, fake, lambda c: c.prompt("swap 1 ETH"), retry=NO_JITTER, timeout=10.0)
    assert len(fake.of("prompt")) == 1
    assert clock.sleeps == []


_PROMPT_OUTCOMES: list[Step] = [
    accepted(),
    error(429),
    error(503),
    error(500),
    error(502),
    error(504),
    error(400),
    Fail(httpx.ConnectError),
    Fail(httpx.ConnectTimeout),
    Fail(httpx.ReadTimeout),
    Fail(httpx.WriteTimeout),
    Fail(httpx.RemoteProtocolError),
    Hang(60.0, accepted()),
]


@settings(max_examples=80, deadline=None)
@given(
    flavour=st.sampled_from(["sync", "async"]),
    script=st.lists(st.sampled_from(_PROMPT_OUTCOMES), min_size=1, max_size=8),
    max_retries=st.integers(0, 6),
)
def test_a_prompt_is_never_sent_again_after_it_may_have_been_accepted(
    flavour: str, script: list[Step], max_retries: int
):
    clock = RecordingClock()
    fake = FakeBankr(clock, prompt=script)
    policy = RetryPolicy(max_retries=max_retries, backoff_base=0.1, backoff_max=1.0)
    with contextlib.suppress(BankrError):
        drive(flavour, fake, lambda c: c.prompt("swap 1 ETH"), retry=policy, timeout=5.0)
    served = fake.served["prompt"]
    assert 1 <= len(served) <= max_retries + 1
    # Only the last request may have been accepted by the server.
    assert not any(step.maybe_accepted for step in served[:-1])


def test_cancel_job_sends_the_documented_request(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock)
    result = drive(flavour, fake, lambda c: c.cancel_job("job_1"))
    request = fake.of("cancel")[0].request
    assert (request.method, request.url.path) == ("POST", "/agent/job/job_1/cancel")
    assert request.content == b""
    assert request.headers["X-API-Key"] == KEY
    assert result.status is JobStatusName.CANCELLED
    assert result.cancelled_at is not None


def test_cancel_of_a_finished_job_returns_its_status(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, cancel=[job("completed")])
    result = drive(flavour, fake, lambda c: c.cancel_job("job_1"))
    assert result.status is JobStatusName.COMPLETED


def test_cancel_of_a_completed_job_may_raise_bad_request(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, cancel=[error(400, "Job already completed", "too late")])
    with pytest.raises(BadRequestError) as info:
        drive(flavour, fake, lambda c: c.cancel_job("job_1"))
    assert info.value.error == "Job already completed"
    assert len(fake.of("cancel")) == 1


def test_cancel_is_retried_like_a_read(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, cancel=[error(500), Fail(httpx.ReadTimeout), job("cancelled")])
    result = drive(flavour, fake, lambda c: c.cancel_job("job_1"), retry=NO_JITTER)
    assert result.status is JobStatusName.CANCELLED
    assert len(fake.of("cancel")) == 3


def test_request_timeout_is_the_client_timeout_outside_polling(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock)
    drive(flavour, fake, lambda c: c.get_job_status("job_1"), timeout=12.5)
    timeout = fake.of("status")[0].request.extensions["timeout"]
    assert timeout == {"connect": 12.5, "read": 12.5, "write": 12.5, "pool": 12.5}


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BANKR_API_URL", "http://env.example/")
    monkeypatch.setenv("BANKR_API_KEY", "bk_env")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return job("completed").response()

    with BankrClient(transport=httpx.MockTransport(handler)) as client:
        assert client.base_url == "http://env.example"
        client.get_job_status("job_1")
    assert str(seen[0].url) == "http://env.example/agent/job/job_1"
    assert seen[0].headers["X-API-Key"] == "bk_env"
    monkeypatch.delenv("BANKR_API_URL")
    assert AsyncBankrClient(api_key="k").base_url == "https://api.bankr.bot"


def test_missing_credentials_are_a_config_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("BANKR_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="no credentials"):
        BankrClient("http://x")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "not a url"},
        {"base_url": "ftp://x"},
        {"timeout": 0},
        {"timeout": -1.0},
        {"retry": 3},
        {"clock": object()},
        {"auth": "bk_key"},
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict[str, object]):
    options: dict[str, object] = {"base_url": "http://x", "api_key": "k", **kwargs}
    if "auth" in kwargs:
        del options["api_key"]
    with pytest.raises(ConfigError):
        BankrClient(**options)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        AsyncBankrClient(**options)  # type: ignore[arg-type]


def test_api_key_and_auth_together_are_refused():
    from bankr_client import ApiKeyAuth

    with pytest.raises(ConfigError, match="either"):
        BankrClient("http://x", "k", auth=ApiKeyAuth("k2"))


def test_a_non_json_2xx_is_a_protocol_error(flavour: str, clock: RecordingClock):
    from bankr_client import ProtocolError

    fake = FakeBankr(clock, status=[Answer(200, content=b"<html>oops</html>")])
    with pytest.raises(ProtocolError) as info:
        drive(flavour, fake, lambda c: c.get_job_status("job_1"))
    assert info.value.status_code == 200
    assert "oops" in info.value.content


def test_unsent_requests_are_marked_unsent(flavour: str, clock: RecordingClock):
    fake = FakeBankr(clock, prompt=[Fail(httpx.ConnectError)])
    with pytest.raises(RequestNotSentError) as info:
        drive(flavour, fake, lambda c: c.prompt("hi"), retry=RetryPolicy(max_retries=0))
    assert info.value.sent is False
    assert isinstance(info.value.__cause__, httpx.ConnectError)
