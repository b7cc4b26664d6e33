"""Sync and async clients differ only in how they do I/O: same requests, same times, same result."""

from __future__ import annotations

from typing import Any

import httpx
from bankr_client import BankrError, RetryPolicy
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

STATUS_STEPS: list[Step] = [
    job("pending"),
    job("processing"),
    job("completed"),
    job("failed"),
    job("cancelled"),
    error(429, headers={"Retry-After": "3"}),
    error(429),
    error(500),
    error(503),
    error(404, "Job not found"),
    Answer(200, content=b"not json"),
    Fail(httpx.ConnectError),
    Fail(httpx.ReadTimeout),
    Hang(40.0, job("completed")),
]
PROMPT_STEPS: list[Step] = [accepted(), error(503), error(500), Fail(httpx.ConnectError)]


def transcript(flavour: str, prompt: list[Step], status: list[Step]) -> tuple[Any, ...]:
    clock = RecordingClock()
    fake = FakeBankr(clock, prompt=prompt, status=status, latency=0.25)
    try:
        outcome: Any = drive(
            flavour,
            fake,
            lambda c: c.prompt_and_wait("hi", interval=2.0, max_attempts=12, timeout=60.0),
            retry=RetryPolicy(max_retries=3),
            timeout=20.0,
        )
    except BankrError as exc:
        outcome = (type(exc).__name__, str(exc))
    requests = [
        (c.kind, c.request.method, str(c.request.url), c.start, c.end, c.read_timeout)
        for c in fake.calls
    ]
    return outcome, requests, clock.sleeps, clock.now()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prompt=st.lists(st.sampled_from(PROMPT_STEPS), min_size=1, max_size=4),
    status=st.lists(st.sampled_from(STATUS_STEPS), min_size=1, max_size=10),
)
def test_sync_and_async_clients_behave_identically(prompt: list[Step], status: list[Step]):
    assert transcript("sync", prompt, status) == transcript("async", prompt, status)
