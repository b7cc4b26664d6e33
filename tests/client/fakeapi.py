"""A scripted Bankr API for the client's tests: an ``httpx.MockTransport`` handler on virtual time.

Each endpoint kind (``prompt``, ``status``, ``cancel``) answers from its own list of steps; the
last step repeats once the list is used up. A step is an HTTP answer (:class:`Answer`), an httpx
exception (:class:`Fail`), or a hang (:class:`Hang`) that is cut by the request's own read
timeout: the clock then moves by exactly that timeout and ``httpx.ReadTimeout`` is raised, as the
simulator's in-process transport does. Every request is recorded with its virtual times.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from bankr_client import AsyncBankrClient, BankrClient

from mockbankr.clock import VirtualClock

__all__ = [
    "BASE",
    "KEY",
    "Answer",
    "Call",
    "Fail",
    "FakeBankr",
    "Hang",
    "RecordingClock",
    "Step",
    "accepted",
    "drive",
    "error",
    "job",
    "kind_of",
]

BASE = "http://bankr.test"


@dataclass(frozen=True)
class Answer:
    """An HTTP response; ``content`` (raw bytes) wins over ``json``."""

    status: int
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None

    @property
    def maybe_accepted(self) -> bool:
        # What a prompt's sender cannot tell apart from "the job was created".
        return self.status < 300 or self.status in (500, 502, 504)

    def response(self) -> httpx.Response:
        if self.content is not None:
            return httpx.Response(self.status, content=self.content, headers=dict(self.headers))
        return httpx.Response(self.status, json=self.json, headers=dict(self.headers))


@dataclass(frozen=True)
class Fail:
    """Raise ``exc`` (an httpx exception class) instead of answering."""

    exc: type[httpx.RequestError]

    @property
    def maybe_accepted(self) -> bool:
        return self.exc not in (httpx.ConnectError, httpx.ConnectTimeout)


@dataclass(frozen=True)
class Hang:
    """Take ``seconds`` to answer with ``then``; a shorter read timeout cuts it."""

    seconds: float
    then: Answer | Fail

    @property
    def maybe_accepted(self) -> bool:
        return True


Step = Answer | Fail | Hang


@dataclass
class Call:
    kind: str
    request: httpx.Request
    start: float
    end: float = float("nan")

    @property
    def read_timeout(self) -> float | None:
        value = self.request.extensions.get("timeout", {}).get("read")
        return None if value is None else float(value)


def job(status: str, job_id: str = "job_1", **fields: Any) -> Answer:
    """A 200 job status body with the documented fields for ``status``."""
    body: dict[str, Any] = {
        "success": True,
        "jobId": job_id,
        "threadId": "thr_1",
        "status": status,
        "prompt": "what is the price of ETH?",
        "createdAt": "2025-01-15T10:30:00.000Z",
        "cancellable": status in ("pending", "processing"),
    }
    if status != "pending":
        body["startedAt"] = "2025-01-15T10:30:01.000Z"
    if status == "completed":
        body.update(response="ETH is $3,000", richData=[], processingTime=3000)
    if status in ("completed", "failed"):
        body["completedAt"] = "2025-01-15T10:30:03.000Z"
    if status == "failed":
        body["error"] = "Insufficient balance"
    if status == "cancelled":
        body["cancelledAt"] = "2025-01-15T10:30:02.000Z"
    body.update(fields)
    return Answer(200, body)


def accepted(job_id: str = "job_1", thread_id: str | None = "thr_1", **fields: Any) -> Answer:
    """A 202 prompt answer."""
    body: dict[str, Any] = {
        "success": True,
        "jobId": job_id,
        "status": "pending",
        "message": "Job submitted successfully",
    }
    if thread_id is not None:
        body["threadId"] = thread_id
    body.update(fields)
    return Answer(202, body)


def error(
    status: int,
    name: str = "Error",
    message: str = "Something went wrong",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Answer:
    """An error answer in the documented ``{"error", "message"}`` shape."""
    return Answer(status, {"error": name, "message": message, **extra}, dict(headers or {}))


def kind_of(request: httpx.Request) -> str:
    path = request.url.path
    if path.endswith("/prompt"):
        return "prompt"
    if path.endswith("/cancel"):
        return "cancel"
    return "status"


class RecordingClock(VirtualClock):
    """A VirtualClock that records every sleep as ``(start, seconds)``."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        super().__init__(start)
        self.sleeps: list[tuple[float, float]] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append((self.now(), seconds))
        await super().sleep(seconds)

    def sleep_sync(self, seconds: float) -> None:
        self.sleeps.append((self.now(), seconds))
        super().sleep_sync(seconds)


class FakeBankr:
    """The scripted API. Use :attr:`transport` for sync clients, :attr:`async_transport` for
    async ones (its latency is an ``await clock.sleep``, so concurrent requests overlap)."""

    def __init__(
        self,
        clock: VirtualClock,
        *,
        prompt: Sequence[Step] = (),
        status: Sequence[Step] = (),
        cancel: Sequence[Step] = (),
        latency: float = 0.0,
    ) -> None:
        self.clock = clock
        self.scripts: dict[str, list[Step]] = {
            "prompt": list(prompt) or [accepted()],
            "status": list(status) or [job("completed")],
            "cancel": list(cancel) or [job("cancelled")],
        }
        self.latency = latency
        self.calls: list[Call] = []
        self.served: dict[str, list[Step]] = {"prompt": [], "status": [], "cancel": []}
        self.in_flight = 0
        self.max_in_flight = 0
        self.transport = httpx.MockTransport(self.handle)
        self.async_transport = httpx.MockTransport(self.handle_async)

    def of(self, kind: str) -> list[Call]:
        return [call for call in self.calls if call.kind == kind]

    def _next(self, kind: str) -> Step:
        script = self.scripts[kind]
        step = script.pop(0) if len(script) > 1 else script[0]
        self.served[kind].append(step)
        return step

    def _begin(self, request: httpx.Request) -> tuple[Call, Step]:
        call = Call(kind_of(request), request, self.clock.now())
        self.calls.append(call)
        return call, self._next(call.kind)

    @staticmethod
    def _answer(step: Answer | Fail, request: httpx.Request) -> httpx.Response:
        if isinstance(step, Fail):
            raise step.exc("scripted failure", request=request)
        return step.response()

    def _hang_wait(self, step: Step, call: Call) -> tuple[float, bool]:
        """How long the request takes, and whether its timeout cuts it."""
        if not isinstance(step, Hang):
            return self.latency, False
        timeout = call.read_timeout
        if timeout is not None and timeout < step.seconds:
            return timeout, True
        return step.seconds, False

    def handle(self, request: httpx.Request) -> httpx.Response:
        call, step = self._begin(request)
        wait, cut = self._hang_wait(step, call)
        self.clock.advance(wait)
        call.end = self.clock.now()
        return self._finish(step, cut, request)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        call, step = self._begin(request)
        wait, cut = self._hang_wait(step, call)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if wait > 0:
                # Unbound, so that a RecordingClock records only the client's own sleeps.
                await VirtualClock.sleep(self.clock, wait)
            else:
                await asyncio.sleep(0)
        finally:
            self.in_flight -= 1
        call.end = self.clock.now()
        return self._finish(step, cut, request)

    def _finish(self, step: Step, cut: bool, request: httpx.Request) -> httpx.Response:
        if cut:
            raise httpx.ReadTimeout("scripted hang cut by the read timeout", request=request)
        return self._answer(step.then if isinstance(step, Hang) else step, request)


KEY = "bk_test"


def drive(flavour: str, fake: FakeBankr, op: Callable[[Any], Any], **options: Any) -> Any:
    """Run ``op(client)`` on a fresh sync or async client wired to ``fake``; the async flavour
    awaits what ``op`` returns. Both clients share ``fake.clock``."""
    kwargs: dict[str, Any] = {
        "base_url": BASE,
        "clock": fake.clock,
        "rng": random.Random(0),
        **options,
    }
    if "auth" not in kwargs:
        kwargs.setdefault("api_key", KEY)
    if flavour == "sync":
        with BankrClient(transport=fake.transport, **kwargs) as client:
            return op(client)

    async def main() -> Any:
        async with AsyncBankrClient(transport=fake.async_transport, **kwargs) as client:
            return await op(client)

    return asyncio.run(main())
