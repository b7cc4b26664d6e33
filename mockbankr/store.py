"""Where job records live: the :class:`JobStore` protocol and the in-memory default.

Records are immutable plain data (:class:`~mockbankr.jobs.JobRecord`), so a
store only puts, gets and swaps them. Every change to a stored job (cancel,
forced outcome) is a compare-and-set through :meth:`JobStore.replace`: the
caller reads a record, computes the new one with a pure function, and the swap
succeeds only if nobody changed the record in between. A Redis store implements
the same four operations with ``SET NX``, ``GET`` and a compare-and-set script,
and no change to the core.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from mockbankr.errors import ConfigError
from mockbankr.jobs import JobRecord
from mockbankr.ledger import LedgerEntry

__all__ = ["JobStore", "MemoryStore", "REDIS_EXTRA_HINT", "SCAN_SLICE", "open_store"]

#: Jobs the memory store's scan reads between two yields to the event loop, so that a
#: walk of every job (a metrics scrape, a filtered page) holds no other request for long.
SCAN_SLICE = 2048

#: What ``--store redis://...`` says when the ``mockbankr[redis]`` extra is missing.
REDIS_EXTRA_HINT = "--store redis://... needs the redis extra: pip install 'mockbankr[redis]'"


@runtime_checkable
class JobStore(Protocol):
    """The storage the simulator's core needs. All methods are atomic.

    Example::

        store = MemoryStore()
        seq = await store.next_seq()
        await store.add(job)
    """

    async def next_seq(self) -> int:
        """A sequence number never handed out before (0, 1, 2, ... in one store)."""
        ...

    async def add(self, job: JobRecord) -> bool:
        """Store a new job; ``False`` (and no change) if its id is taken."""
        ...

    async def get(self, job_id: str) -> JobRecord | None:
        """The job with this id, or ``None``."""
        ...

    async def replace(self, old: JobRecord, new: JobRecord) -> bool:
        """Swap ``old`` for ``new`` only if the stored record still equals ``old``."""
        ...

    async def scan(
        self, predicate: Callable[[JobRecord], bool], *, offset: int, limit: int
    ) -> tuple[list[JobRecord], int]:
        """Jobs in submission order matching ``predicate``: one page, and the total."""
        ...

    async def count(self) -> int:
        """How many jobs are stored."""
        ...

    async def add_paid(self, job: JobRecord, payment: LedgerEntry) -> bool:
        """Store a paid job and its ledger entry together, unless the payment's
        nonce was used before: then ``False``, and nothing is stored."""
        ...

    async def ledger(self) -> list[LedgerEntry]:
        """Every ledger entry, oldest first."""
        ...

    async def clear(self) -> None:
        """Forget every job and payment, and restart the sequence."""
        ...


class MemoryStore:
    """A dict in this process: the embedded default.

    Example::

        store = MemoryStore()
    """

    def __init__(self) -> None:
        self._jobs: dict[str, JobRecord] = {}
        self._payments: list[LedgerEntry] = []
        self._nonces: set[str] = set()
        self._seq = itertools.count()

    async def next_seq(self) -> int:
        return next(self._seq)

    async def add(self, job: JobRecord) -> bool:
        if job.id in self._jobs:
            return False
        self._jobs[job.id] = job
        return True

    async def get(self, job_id: str) -> JobRecord | None:
        return self._jobs.get(job_id)

    async def replace(self, old: JobRecord, new: JobRecord) -> bool:
        if old.id != new.id or self._jobs.get(old.id) != old:
            return False
        self._jobs[new.id] = new
        return True

    async def scan(
        self, predicate: Callable[[JobRecord], bool], *, offset: int, limit: int
    ) -> tuple[list[JobRecord], int]:
        jobs = list(self._jobs.values())  # a snapshot: what is added meanwhile is not seen
        page: list[JobRecord] = []
        total = 0
        for start in range(0, len(jobs), SCAN_SLICE):
            if start:  # let other requests in: a walk of 100,000 jobs is ~50 slices
                await asyncio.sleep(0)
            for job in filter(predicate, jobs[start : start + SCAN_SLICE]):
                if offset <= total < offset + limit:
                    page.append(job)
                total += 1
        return page, total

    async def count(self) -> int:
        return len(self._jobs)

    async def add_paid(self, job: JobRecord, payment: LedgerEntry) -> bool:
        # No await between the checks and the writes: atomic within the event loop.
        if payment.nonce in self._nonces or job.id in self._jobs:
            return False
        self._nonces.add(payment.nonce)
        self._payments.append(payment)
        self._jobs[job.id] = job
        return True

    async def ledger(self) -> list[LedgerEntry]:
        return list(self._payments)

    async def clear(self) -> None:
        self._jobs.clear()
        self._payments.clear()
        self._nonces.clear()
        self._seq = itertools.count()


def open_store(spec: str) -> JobStore:
    """The store ``spec`` names: ``memory``, or ``redis://host:port/db``.

    Redis is imported only here, only for a Redis URL: without the ``mockbankr[redis]``
    extra that is a :class:`~mockbankr.errors.ConfigError` naming it. Nothing connects
    yet: ``await store.ping()`` checks a Redis store is reachable.

    Example::

        store = open_store("redis://127.0.0.1:6379/0")
    """
    if spec == "memory":
        return MemoryStore()
    if not spec.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"--store must be memory or redis://host:port/db, got {spec!r}")
    try:
        from mockbankr.redis_store import RedisStore
    except ImportError as exc:
        raise ConfigError(REDIS_EXTRA_HINT) from exc
    return RedisStore(spec)
