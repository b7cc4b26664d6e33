"""Fixtures for the client's tests: virtual time, and both client flavours."""

from __future__ import annotations

import pytest

from .fakeapi import RecordingClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock()


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once on BankrClient and once on AsyncBankrClient."""
    value: str = request.param
    return value
