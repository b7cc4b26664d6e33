"""The simulator's core: submit, read, cancel and steer jobs, shared by both API flavours.

The core knows owners (an API key or a wallet), not HTTP. It raises the domain
errors of :mod:`mockbankr.errors` (:class:`~mockbankr.errors.JobNotFound`, ...);
each API flavour maps requests to these calls and the results to its own JSON,
and the app's edge maps the errors to the wire (:data:`mockbankr.wire.DOMAIN_ERRORS`).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from mockbankr.clock import Clock, iso
from mockbankr.errors import JobFinished, JobIdCollision, JobNotFound, UnknownCategory
from mockbankr.jobs import (
    FOREVER,
    JobFault,
    JobRecord,
    JobStatus,
    body_changes_at,
    cancelled,
    forced,
    job_body,
    read_only_job,
    status_of,
)
from mockbankr.rules import JobShape
from mockbankr.store import JobStore
from mockbankr.timing import Sample, TimingTable

__all__ = ["Simulator"]

_encode = msgspec.json.Encoder().encode
#: Jobs whose encoded body is kept, oldest dropped first.
_BODY_CACHE = 10_000

_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def _random_id(rng: random.Random, prefix: str) -> str:
    bits = rng.getrandbits(60)
    return prefix + "".join(_ID_ALPHABET[(bits >> (5 * i)) & 31] for i in range(12))


class Simulator:
    """Jobs as pure functions of time, over a :class:`~mockbankr.store.JobStore`.

    With the same ``rng`` seed, the k-th job's id, schedule and outcome depend
    only on the seed, ``k`` and the prompt, so a run can be replayed.

    Example::

        sim = Simulator(load_timing(), clock=VirtualClock(), rng=random.Random(1),
                        store=MemoryStore())
        job = await sim.submit("What is the price of ETH?", owner="key:bk_1")
    """

    def __init__(
        self, table: TimingTable, *, clock: Clock, rng: random.Random, store: JobStore
    ) -> None:
        self.table = table
        self.clock = clock
        self.store = store
        self._base_seed = rng.getrandbits(64)
        # job id -> (record, valid from, valid until, encoded body)
        self._bodies: dict[str, tuple[JobRecord, float, float, bytes]] = {}

    async def reset(self) -> None:
        """Forget every job: the store's, the encoded bodies and timestamps kept for them.

        ``POST /__mock/reset`` calls it, so a reset gives back the memory the jobs held.
        """
        await self.store.clear()
        self._bodies = {}  # a new dict: a cleared one keeps its grown table
        iso.cache_clear()  # the timestamps of the jobs gone (up to 65,536, about 16 MB)

    @property
    def cached_bodies(self) -> int:
        """How many encoded job bodies are kept for reuse (at most 10,000)."""
        return len(self._bodies)

    def job_rng(self, seq: int) -> random.Random:
        """The random stream of the ``seq``-th job: a function of the seed and ``seq`` only."""
        return random.Random(self._base_seed ^ (seq * 0x9E3779B97F4A7C15))

    async def submit(
        self,
        prompt: str,
        *,
        owner: str,
        thread_id: str | None = None,
        shape: JobShape | None = None,
        read_only: bool = False,
    ) -> JobRecord:
        """Create a job: classify the prompt, sample its schedule and store it.

        ``shape`` (from a ``job`` rule) overrides the category, the latency or
        the outcome, after sampling, so a shaped job draws the same random
        stream as an unshaped one. ``read_only``: the job came from a read-only
        key, so a transaction prompt completes with an explanation instead.
        """
        job = await self.new_job(prompt, owner=owner, thread_id=thread_id, shape=shape)
        if read_only and (shape is None or shape.outcome is None):  # a rule's outcome wins
            job = read_only_job(job, self.table[job.category])
        if not await self.store.add(job):
            raise JobIdCollision(job.id)  # pragma: no cover - a race
        return job

    async def new_job(
        self,
        prompt: str,
        *,
        owner: str,
        thread_id: str | None = None,
        shape: JobShape | None = None,
    ) -> JobRecord:
        """A new job's record, sampled but not stored (see :meth:`submit`)."""
        now = self.clock.now()
        seq = await self.store.next_seq()
        rng = self.job_rng(seq)
        category = self.table.classify(prompt)
        if shape is not None and shape.category is not None:
            if shape.category not in self.table.categories:
                raise UnknownCategory(shape.category, known=tuple(self.table.categories))
            category = shape.category
        sample = self.table[category].sample(rng)
        job_id = _random_id(rng, "job_")
        while await self.store.get(job_id) is not None:
            job_id = _random_id(rng, "job_")
        return _shaped(
            JobRecord(
                id=job_id,
                owner=sys.intern(owner),
                prompt=prompt,
                thread_id=thread_id,
                category=category,
                created_at=now,
                started_at=now + sample.pending,
                finished_at=now + sample.total,
                failed=sample.failed,
                variant=sample.variant,
            ),
            sample,
            shape,
        )

    async def get(self, job_id: str, *, owner: str) -> JobRecord:
        """The caller's job; a missing, foreign or vanished job is the same :class:`JobNotFound`."""
        job = await self.store.get(job_id)
        if job is None or job.owner != owner or self._vanished(job):
            raise JobNotFound(job_id)
        return job

    async def inspect(self, job_id: str) -> JobRecord:
        """Any owner's job, vanished or not (for the control plane), or :class:`JobNotFound`."""
        job = await self.store.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def _vanished(self, job: JobRecord) -> bool:
        fault = job.fault
        return fault is not None and fault.kind == "vanish" and self.clock.now() >= fault.at

    async def poll(self, job_id: str, *, owner: str) -> bytes:
        """The encoded status body of the caller's job now (``GET .../job/{id}``).

        A ``regress`` fault answers one poll during processing as if pending, once.
        A body only changes at a few instants (start, each status update, the end),
        so it is encoded once and reused until the next of them, for as long as the
        stored record is the same (a cancel or forced outcome replaces it).
        """
        job = await self.get(job_id, owner=owner)
        now = self.clock.now()
        category = self.table[job.category]
        fault = job.fault
        if fault is not None:
            if fault.kind == "regress" and status_of(job, now) is JobStatus.PROCESSING:
                healed = msgspec.structs.replace(job, fault=None)
                if await self.store.replace(job, healed):
                    now = job.started_at - 1e-3
            return _encode(job_body(job, category, now))
        hit = self._bodies.get(job.id)
        # Equal, not identical: a shared store decodes a new record on every read.
        if hit is not None and (hit[0] is job or hit[0] == job) and hit[1] <= now < hit[2]:
            return hit[3]
        encoded = _encode(job_body(job, category, now))
        if len(self._bodies) >= _BODY_CACHE:
            del self._bodies[next(iter(self._bodies))]
        self._bodies[job.id] = (job, now, body_changes_at(job, category, now), encoded)
        return encoded

    async def cancel(self, job_id: str, *, owner: str) -> JobRecord:
        """Cancel the caller's pending or processing job (idempotent for a cancelled one).

        Raises :class:`JobFinished` for a completed or failed job, and
        :class:`JobNotFound` for a missing or foreign one.
        """
        job, _ = await self._change(job_id, owner, cancelled, "cancel")
        return job

    async def force(
        self,
        job_id: str,
        *,
        outcome: Literal["completed", "failed"] | None = None,
        error: str | None = None,
        finish_in: float | None = None,
    ) -> tuple[JobRecord, float]:
        """Force any owner's unfinished job to an ``outcome`` and/or to finish
        ``finish_in`` seconds from now (the control plane's steering).

        Returns the new record and the simulated instant it was made at. Raises
        :class:`JobFinished` for a finished job, :class:`JobNotFound` for a missing one.
        """

        def change(job: JobRecord, now: float) -> JobRecord | JobStatus:
            finish_at = None if finish_in is None else now + finish_in
            return forced(job, now, outcome=outcome, error=error, finish_at=finish_at)

        return await self._change(job_id, None, change, "steer")

    async def _change(
        self,
        job_id: str,
        owner: str | None,
        change: Callable[[JobRecord, float], JobRecord | JobStatus],
        action: Literal["cancel", "steer"],
    ) -> tuple[JobRecord, float]:
        """The one compare-and-set path of every change to a stored job.

        ``change`` gives the new record, or the status that forbids the change.
        A change that raced another one is retried on the fresh record. ``owner``
        ``None`` is the control plane, which sees every job.
        """
        while True:
            job = await (self.inspect(job_id) if owner is None else self.get(job_id, owner=owner))
            now = self.clock.now()
            result = change(job, now)
            if isinstance(result, JobStatus):
                raise JobFinished(job_id, result.value, action=action)
            if result is job or await self.store.replace(job, result):
                return result, now

    def body(self, job: JobRecord) -> dict[str, Any]:
        """The job's status body now."""
        return job_body(job, self.table[job.category], self.clock.now())


def _shaped(job: JobRecord, sample: Sample, shape: JobShape | None) -> JobRecord:
    """Apply a ``job`` rule's overrides to a freshly sampled record."""
    if shape is None:
        return job
    changes: dict[str, Any] = {}
    if shape.latency is not None:
        total = shape.latency
        changes["finished_at"] = job.created_at + total
        changes["started_at"] = job.created_at + min(sample.pending, total / 2)
    outcome = shape.outcome
    if outcome == "completed":
        changes.update(failed=False, variant=0)
    elif outcome == "failed":
        changes.update(failed=True, variant=0, error=shape.error)
    elif outcome == "stuck":
        changes["finished_at"] = FOREVER
    elif outcome == "regress":
        changes["fault"] = JobFault("regress")
    elif outcome == "vanish":
        changes["fault"] = JobFault("vanish", at=job.created_at + (shape.after or 0.0))
    return msgspec.structs.replace(job, **changes) if changes else job
