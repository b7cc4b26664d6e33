"""Shared fixtures: the app in-process on a VirtualClock, reached through sync httpx."""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette

from mockbankr import MemoryStore, Settings, VirtualClock, create_app
from mockbankr.core import Simulator
from mockbankr.testing import SyncClockTransport

KEY = "bk_test"
OTHER_KEY = "bk_other"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def app(clock: VirtualClock) -> Starlette:
    return create_app(Settings(seed=1), clock=clock, rng=random.Random(1), store=MemoryStore())


@pytest.fixture
def sim(app: Starlette) -> Simulator:
    simulator: Simulator = app.state.simulator
    return simulator


@pytest.fixture
def http(app: Starlette, clock: VirtualClock) -> Iterator[httpx.Client]:
    """A sync client on the app, sending the default API key."""
    transport = SyncClockTransport(app, clock)
    with httpx.Client(
        transport=transport, base_url="http://mockbankr.local", headers={"X-API-Key": KEY}
    ) as client:
        yield client


pytest_plugins = ["pytester"]
