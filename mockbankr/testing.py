"""Test helpers for users' suites: an in-process environment and a live server.

* :class:`MockbankrEnv` wires the reference client (``bankr_client``) to the app
  in-process, on one shared :class:`~mockbankr.clock.VirtualClock`: a 300 s timeout
  scenario takes milliseconds.
* :class:`LiveServer` runs a real uvicorn on a free loopback port, for clients
  in other languages (the official CLI and SDK).

Example::

    async with MockbankrEnv(seed=1) as env:
        job = await env.client.prompt_and_wait("What is the price of ETH?")
        assert job.status == "completed"
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx
import uvicorn
from starlette.applications import Starlette

from mockbankr._asgi import AsyncClockTransport, SyncClockTransport
from mockbankr.app import create_app
from mockbankr.clock import DEFAULT_EPOCH, Clock, RealClock, ScaledClock, VirtualClock
from mockbankr.core import Simulator
from mockbankr.errors import MockbankrError, VerdictsFailed
from mockbankr.grading import grade
from mockbankr.serving import DEFAULT_GRACEFUL_TIMEOUT, GracefulServer
from mockbankr.settings import Settings
from mockbankr.store import JobStore, MemoryStore
from mockbankr.verdicts import CHECKS, Report, Thresholds, server_thresholds

if TYPE_CHECKING:
    from bankr_client import AsyncBankrClient, BankrClient

__all__ = [
    "AsyncClockTransport",
    "LiveServer",
    "MockbankrEnv",
    "SyncClockTransport",
    "VirtualClock",
    "assert_verdicts_pass",
]

#: The base URL of in-process clients (never resolved: requests go to the app).
IN_PROCESS_URL = "http://mockbankr.local"


class MockbankrEnv:
    """The simulator in-process on virtual time, with reference clients wired to it.

    ``env.client`` is an ``AsyncBankrClient``, ``env.sync_client()`` builds a
    ``BankrClient``; both share ``env.clock``. ``env.http`` is a raw
    ``httpx.AsyncClient`` on the same transport. Usable as ``async with`` or
    ``with`` (the latter for sync clients only).

    Example::

        with MockbankrEnv(seed=3) as env:
            job = env.sync_client().prompt_and_wait("Swap 10 USDC for ETH")
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        settings: Settings | None = None,
        api_key: str = "bk_test",
        start: float = DEFAULT_EPOCH,
        store: JobStore | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        # Explicit settings win: their seed (if set) seeds the simulator and the clients.
        self.settings = settings or Settings(seed=seed)
        seed = self.settings.seed if self.settings.seed is not None else seed
        self.seed = seed
        self.api_key = api_key
        self.clock = VirtualClock(start)
        self.store: JobStore = store or MemoryStore()
        self.app: Starlette = create_app(
            self.settings, clock=self.clock, rng=random.Random(seed), store=self.store
        )
        self.transport = AsyncClockTransport(self.app, self.clock)
        self.base_url = IN_PROCESS_URL
        self.http = httpx.AsyncClient(transport=self.transport, base_url=self.base_url)
        self._client_options = client_options or {}
        self._sync_transport: SyncClockTransport | None = None
        self._client: AsyncBankrClient | None = None

    @property
    def simulator(self) -> Simulator:
        sim: Simulator = self.app.state.simulator
        return sim

    @property
    def client(self) -> AsyncBankrClient:
        """The async reference client on this environment (created on first use)."""
        if self._client is None:
            self._client = self.async_client()
        return self._client

    def async_client(self, **options: Any) -> AsyncBankrClient:
        """A new ``AsyncBankrClient`` on the in-process app and the virtual clock."""
        from bankr_client import AsyncBankrClient

        kwargs = {"transport": self.transport, **self._client_kwargs(options)}
        return AsyncBankrClient(**kwargs)

    def sync_client(self, **options: Any) -> BankrClient:
        """A new ``BankrClient`` on the in-process app and the virtual clock."""
        from bankr_client import BankrClient

        if self._sync_transport is None:
            self._sync_transport = SyncClockTransport(self.app, self.clock)
        # Its batch helper (prompt_many) runs on an async twin: give it our transport.
        kwargs = {
            "transport": self._sync_transport,
            "async_transport": self.transport,
            **self._client_kwargs(options),
        }
        return BankrClient(**kwargs)

    def _client_kwargs(self, options: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "base_url": self.base_url,
            "clock": self.clock,
            "rng": random.Random(self.seed),
            **self._client_options,
            **options,
        }
        if "auth" not in kwargs:
            kwargs.setdefault("api_key", self.api_key)
        return kwargs

    def verdicts(
        self,
        thresholds: Thresholds | None = None,
        *,
        owner: str | None = None,
        since: float | None = None,
        **changes: Any,
    ) -> Report:
        """Grade every client that used this environment, now (see :mod:`mockbankr.grading`).

        ``thresholds`` (default: the documented ones, at this server's price) can be
        changed by keyword, e.g. ``env.verdicts(interval=1.0)``.

        Example::

            report = env.verdicts()
            assert_verdicts_pass(report)
        """
        base = thresholds or server_thresholds(self.settings.payment.price_atomic)
        if changes:
            base = dataclasses.replace(base, **changes)
        journal = self.app.state.journal
        return grade(
            journal.entries(),
            base,
            now=self.clock.now(),
            owner=owner,
            since=since,
            dropped=journal.dropped,
        )

    def advance(self, seconds: float) -> None:
        """Move simulated time forward."""
        self.clock.advance(seconds)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        await self.http.aclose()
        self.close_sync()

    def close_sync(self) -> None:
        if self._sync_transport is not None:
            self._sync_transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_sync()


def assert_verdicts_pass(report: Report, *, checks: Iterable[str] = CHECKS) -> None:
    """Fail (``VerdictsFailed``, an ``AssertionError``) if a client failed one of ``checks``.

    The message lists each failed check per client, with its evidence: the journal
    entries (simulated time, method, path, status) and the USDC it wasted.

    Example::

        async with MockbankrEnv() as env:
            await my_agent(env.http)
            assert_verdicts_pass(env.verdicts())
    """
    wanted = set(checks)
    unknown = wanted - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown check {sorted(unknown)[0]!r}; the checks are {CHECKS}")
    failing = [c for c in report.clients if wanted & set(c.failed)]
    if failing:
        raise VerdictsFailed(report.only(wanted))


class LiveServer:
    """A real uvicorn serving mockbankr on a free loopback port, in a thread.

    Example::

        with LiveServer(speed=50, seed=1) as server:
            httpx.get(server.base_url + "/_health")
    """

    def __init__(
        self,
        *,
        speed: float = 1.0,
        seed: int = 0,
        settings: Settings | None = None,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
    ) -> None:
        self.graceful_timeout = graceful_timeout
        # Explicit settings win: their seed and speed override the arguments.
        self.settings = settings or Settings(seed=seed, speed=speed)
        if self.settings.seed is not None:
            seed = self.settings.seed
        self.clock: Clock = clock or ScaledClock(self.settings.speed)
        self.store = MemoryStore()
        # Payments are checked on wall time: the official SDK signs them with Date.now().
        self.app = create_app(
            self.settings,
            clock=self.clock,
            rng=random.Random(seed),
            store=self.store,
            payment_clock=RealClock(),
        )
        # proto=IPPROTO_TCP matters: asyncio disables Nagle only on sockets that say so,
        # and without it every response waits 40 ms for a delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self.host, self.port = self._sock.getsockname()[:2]
        self.base_url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = GracefulServer(
            config, lifetime=self.app.state.lifetime, graceful_timeout=graceful_timeout
        )
        self._thread = threading.Thread(target=self._run, name="mockbankr-live", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self, *, timeout: float = 10.0) -> Self:
        """Start serving; wait (in wall time, at most ``timeout`` s) until it accepts."""
        self._thread.start()
        tick = threading.Event()  # never set: its wait() is a short interruptible pause
        for _ in range(int(timeout / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            tick.wait(0.01)
        if not self._server.started:
            self.stop()
            raise MockbankrError(f"mockbankr's live server did not start within {timeout} s")
        return self

    def stop(self) -> None:
        """Stop serving, and return only once the server has stopped.

        Hung and delayed requests end at once (503); whatever else is in flight gets
        ``graceful_timeout`` seconds. A server thread still alive after that (and a
        margin) is a :class:`~mockbankr.errors.MockbankrError`, never a silent leak.
        """
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=self.graceful_timeout + 5)
        self._sock.close()
        if self._thread.is_alive():
            raise MockbankrError(
                f"mockbankr's live server did not stop within {self.graceful_timeout + 5} s"
            )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
