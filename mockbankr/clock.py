"""Clocks: the only source of time in mockbankr.

Every module reads time through a :class:`Clock`. Simulated time is measured in
seconds since the Unix epoch, as a float, so it converts directly to the ISO
timestamps the API sends.

* :class:`RealClock` -- simulated time is wall time.
* :class:`ScaledClock` -- simulated time runs ``speed`` times faster than wall time.
* :class:`VirtualClock` -- time moves only when someone advances it, either
  explicitly (:meth:`VirtualClock.advance`) or by sleeping on it. An async
  ``sleep`` on a virtual clock returns as soon as every other task in the loop is
  blocked, with the clock moved to the sleeper's deadline ("auto-jump"), so a
  five-minute timeout scenario costs milliseconds.

No clock ever reads past :data:`~mockbankr.validate.CLOCK_LIMIT` (the year 9000):
setting it further is a ``ValueError`` and a running clock stops there, so no input
and no amount of waiting can push time where it can no longer be printed.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Protocol, runtime_checkable

from mockbankr.validate import CLOCK_LIMIT

__all__ = [
    "CLOCK_LIMIT",
    "Clock",
    "ClockTimeout",
    "DEFAULT_EPOCH",
    "MAX_TIME",
    "REAL_IO",
    "RealClock",
    "ScaledClock",
    "Timer",
    "VirtualClock",
    "call_later",
    "iso",
    "perf_seconds",
    "wall_time",
]

#: The last instant an ISO timestamp can show (9999-12-31T23:59:59Z); steering stops there.
MAX_TIME = 253402300799.0

#: Where a :class:`VirtualClock` starts by default: 2025-01-15T10:30:00Z, the
#: instant of the Bankr docs' example job. A fixed start keeps output deterministic.
DEFAULT_EPOCH = 1736937000.0


@runtime_checkable
class Clock(Protocol):
    """The clock protocol shared by the simulator and (structurally) by the client.

    Example::

        clock = VirtualClock()
        t0 = clock.now()
        await clock.sleep(5)
        assert clock.now() == t0 + 5
    """

    def now(self) -> float:
        """Simulated seconds since the Unix epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of simulated time without blocking the loop."""
        ...

    def sleep_sync(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` of simulated time."""
        ...


class RealClock:
    """Simulated time is wall time.

    Example::

        clock = RealClock()
        clock.now()  # same as time.time()
    """

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def sleep_sync(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` on the running loop ``seconds`` from now (no task)."""
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback)


def _check_target(when: float, now: float) -> float:
    if not math.isfinite(when) or when > CLOCK_LIMIT:
        raise ValueError(f"the clock cannot go past {iso(CLOCK_LIMIT)} (got {when!r})")
    if when < now:
        raise ValueError(f"cannot move a clock backwards (from {now} to {when})")
    return float(when)


def _check_speed(speed: float) -> float:
    if not (math.isfinite(speed) and speed >= 0):
        raise ValueError(f"speed must be a finite number >= 0, got {speed!r}")
    return float(speed)


#: The longest a scaled sleep waits in one go before it looks at the clock again.
_MAX_WALL_WAIT = 3600.0


class ScaledClock:
    """Simulated time runs ``speed`` times faster than wall time; speed 0 stops it.

    It starts at the wall time of its creation (or ``start``), so timestamps
    stay plausible. Sleepers follow every change: advancing the clock or changing
    its speed (from any thread) wakes them to re-plan, so a sleep on a stopped clock
    ends when time moves again, and one that the clock jumped past ends at once.

    Example::

        clock = ScaledClock(20)   # a 10 s swap finishes after 0.5 wall seconds
        clock.set_speed(0)        # time stands still until the next advance or speed
    """

    def __init__(self, speed: float, *, start: float | None = None) -> None:
        self._speed = self._initial_speed = _check_speed(speed)
        self._start = start
        self._wall0 = time.monotonic()
        self._sim0 = min(time.time() if start is None else float(start), CLOCK_LIMIT)
        self._changed = threading.Condition()
        self._sleepers: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        #: Counts the changes made here (speed, advance, reset), not those loaded by
        #: :meth:`set_anchor`: a shared clock publishes a change when it moves.
        self.revision = 0
        self._timers: set[_ScaledTimer] = set()

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on, without a jump in simulated time (0 stops it)."""
        speed = _check_speed(speed)
        now = self.now()
        self._wall0 = time.monotonic()
        self._sim0 = now
        self._speed = speed
        self._notify()

    def now(self) -> float:
        t = self._sim0 + (time.monotonic() - self._wall0) * self._speed
        return t if t < CLOCK_LIMIT else CLOCK_LIMIT

    def advance(self, seconds: float) -> None:
        """Jump simulated time forward by ``seconds``; it keeps running at the same speed."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards ({seconds!r} s)")
        now = self.now()
        target = _check_target(now + seconds, now)
        self._sim0 += target - now
        self._notify()

    def reset(self) -> None:
        """Back to how it started: its start time (wall time now, by default) and speed."""
        self._wall0 = time.monotonic()
        self._sim0 = min(time.time() if self._start is None else float(self._start), CLOCK_LIMIT)
        self._speed = self._initial_speed
        self._notify()

    def anchor(self) -> tuple[float, float, float]:
        """``(simulated, wall, speed)``: at wall time ``wall`` (unix seconds) simulated time
        was ``simulated``, and runs ``speed`` times faster since. Another process (or host,
        with synchronised wall clocks) given it by :meth:`set_anchor` runs in step."""
        wall = time.time() - (time.monotonic() - self._wall0)
        return self._sim0, wall, self._speed

    def set_anchor(self, simulated: float, wall: float, speed: float) -> None:
        """Run from an :meth:`anchor` of another clock (sleepers re-plan, as after a change)."""
        self._wall0 = time.monotonic() - (time.time() - wall)
        self._sim0 = min(float(simulated), CLOCK_LIMIT)
        self._speed = _check_speed(speed)
        self._notify(changed=False)

    def _notify(self, *, changed: bool = True) -> None:
        if changed:
            self.revision += 1
        with self._changed:
            self._changed.notify_all()
        for loop, fut in list(self._sleepers):
            loop.call_soon_threadsafe(_resolve, fut)
        for timer in list(self._timers):
            timer.loop.call_soon_threadsafe(timer.plan)

    def _wall_wait(self, deadline: float) -> float | None:
        """Wall seconds until simulated ``deadline`` at the current speed (None: never)."""
        if self._speed == 0 or deadline > CLOCK_LIMIT:
            return None
        return min((deadline - self.now()) / self._speed, _MAX_WALL_WAIT)

    async def sleep(self, seconds: float) -> None:
        if not seconds > 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        deadline = self.now() + seconds
        while self.now() < deadline:
            fut: asyncio.Future[None] = loop.create_future()
            entry = (loop, fut)
            wait = self._wall_wait(deadline)
            timer = None if wait is None else loop.call_later(wait, _resolve, fut)
            self._sleepers.add(entry)
            try:
                await fut
            finally:
                self._sleepers.discard(entry)
                if timer is not None:
                    timer.cancel()

    def sleep_sync(self, seconds: float) -> None:
        if not seconds > 0:
            return
        deadline = self.now() + seconds
        with self._changed:
            while self.now() < deadline:
                self._changed.wait(self._wall_wait(deadline))

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` on the running loop once ``seconds`` of simulated time pass.

        No task: a loop timer, planned again whenever the clock's speed or time changes.
        """
        timer = _ScaledTimer(self, asyncio.get_running_loop(), self.now() + seconds, callback)
        timer.plan()
        return timer


class _ScaledTimer:
    """A callback at a simulated instant of a :class:`ScaledClock`, on one loop."""

    __slots__ = ("callback", "clock", "deadline", "handle", "loop")

    def __init__(
        self,
        clock: ScaledClock,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        callback: Callable[[], None] | None,
    ) -> None:
        self.clock, self.loop, self.deadline, self.callback = clock, loop, deadline, callback
        self.handle: asyncio.TimerHandle | None = None

    def plan(self) -> None:
        """Fire if due, else wait (in wall time) for the deadline at the clock's speed."""
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        callback = self.callback
        if callback is None:  # cancelled, or fired already
            return
        if self.clock.now() >= self.deadline:
            self.cancel()
            callback()
            return
        wait = self.clock._wall_wait(self.deadline)
        if wait is not None:  # None: a stopped clock; a change of speed plans again
            self.handle = self.loop.call_later(max(wait, 0.0), self.plan)
        self.clock._timers.add(self)

    def cancel(self) -> None:
        self.callback = None
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.clock._timers.discard(self)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


#: How many loop iterations a virtual sleep lets pass, with no new sleeper
#: arriving, before it concludes that every task is blocked and jumps time.
_SETTLE_TICKS = 4

#: Awaits on real I/O in flight (a shared store's round trips): a virtual clock never
#: jumps while one is pending, since the loop only looks settled while it waits.
_real_io = 0


class _RealIO:
    """The context of an await on real I/O (see :data:`REAL_IO`)."""

    __slots__ = ()

    def __enter__(self) -> None:
        global _real_io
        _real_io += 1

    def __exit__(self, *exc: object) -> None:
        global _real_io
        _real_io -= 1


REAL_IO: Final = _RealIO()
"""Mark an await on real I/O (a network round trip): a :class:`VirtualClock` does not count
the loop as settled, and so does not jump, until it has returned. Reentrant, reusable.

Example::

    with REAL_IO:
        record = await redis.hget(...)
"""


class VirtualClock:
    """Time that moves only when advanced or slept on.

    ``await clock.sleep(dt)`` parks the caller until the clock reaches its
    deadline. When the loop has settled (all tasks blocked), the earliest sleeper's
    deadline becomes "now" and it wakes: concurrent sleepers therefore wake in
    deadline order, as they would in real time, but without waiting.
    ``sleep_sync`` and :meth:`advance` move the clock directly.

    Example::

        clock = VirtualClock(start=0.0)
        clock.advance(2.5)
        assert clock.now() == 2.5
    """

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._start = self._now = float(start)
        self._waiters: list[tuple[float, int, asyncio.Future[None] | _VirtualTimer]] = []
        self._cancelled = 0  # waiters given up on but still in the heap
        self._counter = itertools.count()
        self._driver: asyncio.Handle | None = None

    @property
    def scheduled(self) -> int:
        """Sleepers and timers the clock holds, including any given up on and not yet dropped.

        A burst of requests that finished leaves at most a few: given-up entries are
        dropped once they are half of the heap (amortised O(1)).
        """
        return len(self._waiters)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0) and wake every sleeper now due."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards ({seconds!r} s)")
        self.set(self._now + seconds)

    def reset(self) -> None:
        """Back to its start instant (the one time a virtual clock moves backwards)."""
        self._now = self._start
        self._wake_due()

    def set(self, when: float) -> None:
        """Move time forward to ``when``; time never moves backwards, nor past the limit."""
        self._now = _check_target(when, self._now)
        self._wake_due()

    def sleep_sync(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut = self._schedule(loop, seconds)
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()
            if fut.cancelled():
                self._given_up()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` on the loop once the clock reaches ``seconds`` from now.

        No task and no future: an entry in the clock's heap, which costs the loop
        nothing until it fires (cancelling schedules nothing either). The timer counts
        as a sleeper: when the loop settles, time jumps to it.
        """
        loop = asyncio.get_running_loop()
        timer = _VirtualTimer(self, loop, callback)
        heapq.heappush(self._waiters, (self._now + max(0.0, seconds), next(self._counter), timer))
        self._schedule_driver(loop)
        return timer

    def _schedule(self, loop: asyncio.AbstractEventLoop, seconds: float) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiters, (self._now + seconds, next(self._counter), fut))
        self._schedule_driver(loop)
        return fut

    def _given_up(self) -> None:
        """One waiter was cancelled: drop them all once they are half of the heap."""
        self._cancelled += 1
        if self._cancelled > 16 and 2 * self._cancelled > len(self._waiters):
            self._waiters = [w for w in self._waiters if not w[2].done()]
            heapq.heapify(self._waiters)
            self._cancelled = 0

    # -- auto-jump machinery --------------------------------------------------

    def _schedule_driver(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._driver is None:
            self._driver = loop.call_soon(self._drive, loop, len(self._waiters), 0)

    def _drive(self, loop: asyncio.AbstractEventLoop, seen: int, quiet: int) -> None:
        # Re-arm for a few loop iterations so that every runnable task gets to
        # reach its next sleep before time jumps.
        self._prune()
        if not self._waiters:
            self._driver = None
            return
        count = len(self._waiters)
        quiet = quiet + 1 if count == seen and not _real_io else 0
        if quiet < _SETTLE_TICKS:
            self._driver = loop.call_soon(self._drive, loop, count, quiet)
            return
        self._driver = None
        deadline = self._waiters[0][0]
        if deadline > CLOCK_LIMIT:
            # Time ends at the limit: whoever sleeps past it sleeps until cancelled.
            self._now = max(self._now, CLOCK_LIMIT)
            return
        if deadline > self._now:
            self._now = deadline
        self._wake_due()
        if self._waiters:
            self._schedule_driver(loop)

    def _prune(self) -> None:
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)
            self._cancelled = max(0, self._cancelled - 1)

    def _wake_due(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._now:
            _, _, waiter = heapq.heappop(self._waiters)
            if isinstance(waiter, _VirtualTimer):
                waiter.fire()
            elif not waiter.done():
                waiter.set_result(None)


class _VirtualTimer:
    """A callback in a :class:`VirtualClock`'s heap: done once fired or cancelled."""

    __slots__ = ("_callback", "_clock", "_loop")

    def __init__(
        self, clock: VirtualClock, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
    ) -> None:
        self._clock, self._loop = clock, loop
        self._callback: Callable[[], None] | None = callback

    def done(self) -> bool:
        return self._callback is None

    def fire(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            self._loop.call_soon(callback)  # on the loop, as a future's callback would run

    def cancel(self) -> None:
        if self._callback is not None:
            self._callback = None
            self._clock._given_up()


class Timer(Protocol):
    """What :func:`call_later` gives back: something to cancel."""

    def cancel(self) -> object: ...


def call_later(clock: Clock, seconds: float, callback: Callable[[], None]) -> Timer:
    """Call ``callback`` on the running loop after ``seconds`` of ``clock``'s time.

    The clocks of this module do it without a task (a loop timer, or an entry in a
    virtual clock's heap); any other :class:`Clock` gets a task sleeping on it.

    Example::

        timer = call_later(clock, 30, task.cancel)
        ...
        timer.cancel()
    """
    schedule = getattr(clock, "call_later", None)
    if schedule is not None:
        timer: Timer = schedule(seconds, callback)
        return timer

    async def fire() -> None:
        await clock.sleep(seconds)
        callback()

    return asyncio.ensure_future(fire())


class ClockTimeout:
    """:func:`asyncio.timeout` on a :class:`Clock`: cancel the block after ``seconds``.

    The block's task is cancelled when ``clock`` reaches the deadline, and the block
    raises :class:`TimeoutError` (:meth:`expired` tells it from one raised inside).
    No task per use: the deadline is a :func:`call_later` timer.

    Example::

        async with ClockTimeout(clock, 30) as deadline:
            await receive()
    """

    __slots__ = ("_clock", "_inner", "_seconds", "_timer")

    def __init__(self, clock: Clock, seconds: float) -> None:
        self._clock = clock
        self._seconds = seconds
        self._inner = asyncio.timeout(None)
        self._timer: Timer | None = None

    async def __aenter__(self) -> ClockTimeout:
        inner = self._inner
        await inner.__aenter__()
        loop = asyncio.get_running_loop()
        # Expiring "now" in loop time: asyncio's own Timeout cancels and converts.
        self._timer = call_later(self._clock, self._seconds, lambda: inner.reschedule(loop.time()))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        await self._inner.__aexit__(exc_type, exc, tb)

    def expired(self) -> bool:
        """Whether the deadline passed and cancelled the block."""
        return self._inner.expired()


@functools.lru_cache(maxsize=65536)
def iso(t: float) -> str:
    """Simulated unix seconds as the ISO-8601 UTC form JavaScript's ``toISOString`` gives.

    Example::

        iso(1736937003.0) == "2025-01-15T10:30:03.000Z"
    """
    ms = round(t * 1000)
    stamp = _dt.datetime.fromtimestamp(ms // 1000, tz=_dt.UTC)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


#: Wall-clock unix seconds, for journals and logs only (never for simulated logic).
#: Aliases rather than wrappers: the request journal reads them on every request.
wall_time = time.time

#: A monotonic high-resolution counter, for measuring latency only.
perf_seconds = time.perf_counter
