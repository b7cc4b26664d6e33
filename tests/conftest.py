"""Shared fixtures: the app in-process on a VirtualClock, reached through sync httpx."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from _redis_server import RedisServer, start_redis
from starlette.applications import Starlette

from mockbankr import JobStore, MemoryStore, Settings, VirtualClock, create_app
from mockbankr.core import Simulator
from mockbankr.jobs import JobRecord
from mockbankr.testing import SyncClockTransport

KEY = "bk_test"
OTHER_KEY = "bk_other"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Debian's redis-server on a free loopback port, for the whole session."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.kill()


@pytest.fixture
def store_kind() -> str:
    """Which store ``store`` is: a module runs on both with
    ``@pytest.fixture(params=STORES)`` of its own ``store_kind``."""
    return "memory"


#: The stores a parametrized suite runs on.
STORES = ["memory", "redis"]


def new_store(kind: str, request: pytest.FixtureRequest) -> JobStore:
    """A fresh, empty store of ``kind`` (Redis: the session's server, flushed)."""
    if kind == "memory":
        return MemoryStore()
    from mockbankr.redis_store import RedisStore

    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    return RedisStore(server.url)


@pytest.fixture
def store(store_kind: str, request: pytest.FixtureRequest) -> JobStore:
    """A fresh, empty store of ``store_kind``."""
    return new_store(store_kind, request)


@pytest.fixture
def app(clock: VirtualClock, store: JobStore) -> Starlette:
    return create_app(Settings(seed=1), clock=clock, rng=random.Random(1), store=store)


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


def stored(sim: Simulator, job_id: str) -> JobRecord:
    """The stored record of ``job_id`` (from sync code, whatever the store)."""
    record = asyncio.run(sim.store.get(job_id))
    assert record is not None, job_id
    return record


def rewrite(sim: Simulator, job_id: str, **changes: Any) -> JobRecord:
    """Change a stored record in place (a test's shortcut to a state)."""
    old = stored(sim, job_id)
    new = msgspec.structs.replace(old, **changes)
    assert asyncio.run(sim.store.replace(old, new))
    return new


def snapshot(sim: Simulator) -> tuple[list[JobRecord], list[Any]]:
    """Every stored job and ledger entry, to check that nothing changed."""
    jobs, _ = asyncio.run(sim.store.scan(lambda job: True, offset=0, limit=1 << 30))
    return jobs, asyncio.run(sim.store.ledger())
