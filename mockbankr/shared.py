"""Everything else a server knows, shared: the clock, the rules, the keys (revocations,
rotations) and the daily-limit windows.

With a shared store (Redis), N servers behave as one. The truth lives in the store, one
blob and one version per *area* (the clock, the rules, the keys); each server keeps its
local objects (the :class:`~mockbankr.clock.ScaledClock`, the
:class:`~mockbankr.rules.RuleSet`, the :class:`~mockbankr.accounts.KeyBook`), so the
request paths stay synchronous and fast:

* before a request, :meth:`SharedState.before` reads every area's version in one round
  trip (with the polled job, when there is one); an area changed elsewhere is reloaded;
* before its response starts, :meth:`SharedState.after` publishes each area this server
  changed (a ``/__mock/clock`` change, a rule added), so the next request on any server
  sees it;
* a change of the control plane runs in :meth:`SharedState.exclusive`: under the store's
  lease lock, from loading the latest areas to publishing its own, so two changes on two
  servers at once are made one after the other and neither is lost;
* a rule's ``times`` is taken from a shared counter when it fires (an atomic
  decrement-if-positive), so a ``times: 3`` rule fires exactly three times across servers;
* a prompt's daily quota is checked and counted in the store in one atomic step
  (:class:`~mockbankr.limits.QuotaBackend`), so exactly ``limit`` prompts are counted.

The core knows no store: the :class:`StateBackend` is the Redis store's
(:mod:`mockbankr.redis_store`).

Example::

    shared = SharedState(backend, clock=clock, rules=rules, limits=quota, keys=book)
    await shared.before(job_id=None)
    ...
    await shared.after()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Final, Protocol, runtime_checkable

import msgspec

from mockbankr.accounts import KeyBook
from mockbankr.clock import Clock, ScaledClock
from mockbankr.errors import StoreUnavailable
from mockbankr.limits import DailyLimit, QuotaBackend
from mockbankr.rules import RuleSet

__all__ = ["AREAS", "LOCK_LEASE", "LOCK_WAIT", "SharedState", "StateBackend"]

#: The shared areas, in the order they are read.
AREAS = ("clock", "rules", "keys")

#: Seconds a control-plane change may hold the store's lock: a server that dies holding
#: it blocks the others' changes this long at most.
LOCK_LEASE: Final = 5.0
#: Seconds a control-plane change waits for the lock before its 503 (past one lease, so
#: a dead holder's lock has expired by then).
LOCK_WAIT: Final = 6.0


@runtime_checkable
class StateBackend(QuotaBackend, Protocol):
    """Where shared areas (and the daily-limit windows) live (the Redis store implements it)."""

    async def versions(self, job_id: str | None) -> Mapping[str, int]:
        """Every area's version (0: never written), in one round trip; ``job_id``: also
        fetch that job, for the store's next read of it."""
        ...

    async def read(self, area: str) -> tuple[int, bytes | None]:
        """An area's version and blob."""
        ...

    async def write(
        self,
        area: str,
        data: bytes,
        *,
        if_absent: bool = False,
        counts: Mapping[str, int] | None = None,
    ) -> int:
        """Store an area's blob (``if_absent``: only if it was never written); its version.

        ``counts`` (the rules): in the same atomic step, start the counters of new rules
        (one that exists keeps its count) and drop those of rules no longer there."""
        ...

    async def claim(self, uid: str) -> int:
        """Take one firing of the counted rule ``uid``: the count left, or -1 if none was."""
        ...

    async def counts(self) -> dict[str, int]:
        """Every counted rule's count left, by uid."""
        ...

    async def lock(self, *, lease: float, wait: float) -> str:
        """Take the control-plane lock for ``lease`` seconds at most, waiting ``wait``
        seconds at most (then :class:`~mockbankr.errors.StoreUnavailable`): its token."""
        ...

    async def unlock(self, token: str) -> None:
        """Give the lock back, if ``token`` still holds it."""
        ...


class _Area(Protocol):
    @property
    def revision(self) -> int: ...

    def export(self) -> bytes: ...

    def load(self, data: bytes) -> None: ...


class _ClockArea:
    """A scaled clock's anchor (simulated time, wall time, speed) as an area."""

    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock

    @property
    def revision(self) -> int:
        return self.clock.revision

    def export(self) -> bytes:
        return msgspec.msgpack.encode(self.clock.anchor())

    def load(self, data: bytes) -> None:
        simulated, wall, speed = msgspec.msgpack.decode(data, type=tuple[float, float, float])
        self.clock.set_anchor(simulated, wall, speed)


class SharedState:
    """This server's view of the shared areas, kept in step with a :class:`StateBackend`.

    A virtual clock (tests in one process) is not shared: only a
    :class:`~mockbankr.clock.ScaledClock` has an anchor to share.

    Example::

        shared = SharedState(backend, clock=clock, rules=rules, limits=quota)
    """

    def __init__(
        self,
        backend: StateBackend,
        *,
        clock: Clock,
        rules: RuleSet,
        limits: DailyLimit,
        keys: KeyBook | None = None,
    ) -> None:
        self.backend = backend
        self.rules = rules
        areas: dict[str, _Area] = {"rules": rules}
        if keys is not None:
            areas["keys"] = keys
        if isinstance(clock, ScaledClock):
            areas = {"clock": _ClockArea(clock), **areas}
        self._areas = areas
        self._known = dict.fromkeys(areas, -1)  # versions loaded or written here
        self._revisions = {name: area.revision for name, area in areas.items()}
        # Reads of an area are numbered as they start; one that ends after a later-started
        # one was loaded is stale (the requests of a server reload concurrently).
        self._reads = dict.fromkeys(areas, 0)
        self._loaded = dict.fromkeys(areas, 0)
        self._started = False
        # This server's changes queue here (first come, first served), so one at a time
        # asks the store for the lock: waiters do not flood it, nor starve one another.
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        rules.claim = backend.claim
        limits.shared = backend

    async def before(self, job_id: str | None = None, *, control: bool = False) -> None:
        """Load what changed elsewhere (one round trip when nothing did). ``control``: also
        the rules' counts, for a control-plane request that may list them."""
        versions = await self.backend.versions(job_id)
        if not self._started:
            await self._start(versions)
            versions = await self.backend.versions(None)
        for name, area in self._areas.items():
            version = versions.get(name, 0)
            if version != self._known[name]:
                await self._reload(name, area)
        if control and len(self.rules):
            self.rules.set_remaining(await self.backend.counts())

    async def _reload(self, name: str, area: _Area) -> None:
        """Load an area's latest blob, unless what this server has is newer by the time it
        arrives: a read started later was loaded meanwhile, or a change made here (under
        the lock, so the newest there is) is not published yet."""
        read = self._reads[name] = self._reads[name] + 1
        version, data = await self.backend.read(name)
        if read < self._loaded[name] or area.revision != self._revisions[name]:
            return
        self._loaded[name] = read
        if data is not None:
            area.load(data)
            if area is self.rules:
                self.rules.set_remaining(await self.backend.counts())
        self._known[name] = version
        self._revisions[name] = area.revision

    async def _start(self, versions: Mapping[str, int]) -> None:
        """The first server on a store publishes its areas; later ones load them (after a
        restart too: the clock, the rules and the counters are as they were)."""
        self._started = True
        for name, area in self._areas.items():
            if versions.get(name, 0) == 0:
                await self._publish(name, area, if_absent=True)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """A control-plane change, made alone across the servers: under the store's lock,
        load the latest areas, make the change (the block), publish it, give the lock back.

        Raises :class:`~mockbankr.errors.StoreUnavailable` (a 503) when the store is lost or
        the lock stays taken past :data:`LOCK_WAIT` (queueing here included)."""
        queue = self._queue()
        started = time.monotonic()
        try:
            async with asyncio.timeout(LOCK_WAIT):
                await queue.acquire()
            queued = True
        except TimeoutError:  # one last try at the store's lock, which names the store
            queued = False
        try:
            wait = max(0.0, LOCK_WAIT - (time.monotonic() - started))
            token = await self.backend.lock(lease=LOCK_LEASE, wait=wait)
            try:
                await self.before(control=True)
                yield
            finally:
                try:
                    if self.changed():  # a refused change changed nothing: nothing to publish
                        await self.after()
                finally:
                    with contextlib.suppress(StoreUnavailable):  # else its lease ends it
                        await self.backend.unlock(token)
        finally:
            if queued:
                queue.release()

    def _queue(self) -> asyncio.Lock:
        """The running event loop's queue of changes (an asyncio lock belongs to one loop)."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = asyncio.Lock()
        return queue

    def changed(self) -> bool:
        """Whether an area changed here since it was last loaded or published (cheap)."""
        revisions = self._revisions
        return any(area.revision != revisions[name] for name, area in self._areas.items())

    async def after(self) -> None:
        """Publish every area this server changed since it last loaded or published it."""
        for name, area in self._areas.items():
            if area.revision != self._revisions[name]:
                await self._publish(name, area)

    async def _publish(self, name: str, area: _Area, *, if_absent: bool = False) -> None:
        revision = area.revision
        counts = self.rules.counted() if area is self.rules else None
        version = await self.backend.write(name, area.export(), if_absent=if_absent, counts=counts)
        if not if_absent:
            self._known[name] = version
        self._revisions[name] = revision
