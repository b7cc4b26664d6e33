"""The simulator core speaks in domain errors, and every change to a job is one compare-and-set."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from mockbankr import MemoryStore, VirtualClock, load_timing
from mockbankr.core import Simulator
from mockbankr.errors import ApiError, JobFinished, JobNotFound, UnknownCategory
from mockbankr.jobs import JobRecord, JobStatus, cancelled, status_of
from mockbankr.rules import JobShape

pytestmark = pytest.mark.anyio

PROMPT = "What is the price of ETH?"


class RacingStore(MemoryStore):
    """Lets someone else change a job just before our first compare-and-set lands."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        self.raced = 0

    async def replace(self, old: JobRecord, new: JobRecord) -> bool:
        if not self.raced:
            self.raced += 1
            theirs = cancelled(old, self.clock.now())  # a cancel from another request wins
            assert isinstance(theirs, JobRecord)
            assert await super().replace(old, theirs)
        return await super().replace(old, new)


def make(clock: VirtualClock, store: MemoryStore | None = None) -> Simulator:
    return Simulator(load_timing(), clock=clock, rng=random.Random(1), store=store or MemoryStore())


async def test_a_missing_or_foreign_job_is_job_not_found_not_an_http_error() -> None:
    sim = make(VirtualClock())
    job = await sim.submit(PROMPT, owner="key:a")
    for job_id, owner in (("job_NOPE", "key:a"), (job.id, "key:b")):
        with pytest.raises(JobNotFound) as info:
            await sim.get(job_id, owner=owner)
        assert info.value.job_id == job_id
        assert not isinstance(info.value, ApiError)
    with pytest.raises(JobNotFound):
        await sim.inspect("job_NOPE")
    assert (await sim.inspect(job.id)).owner == "key:a"  # the control plane sees any owner's


async def test_cancelling_a_finished_job_names_its_status_and_the_action() -> None:
    clock = VirtualClock()
    sim = make(clock)
    job = await sim.submit(PROMPT, owner="key:a", shape=JobShape(outcome="completed"))
    clock.advance(job.finished_at - clock.now() + 1)
    with pytest.raises(JobFinished) as info:
        await sim.cancel(job.id, owner="key:a")
    assert (info.value.job_id, info.value.status, info.value.action) == (
        job.id,
        "completed",
        "cancel",
    )


async def test_an_unknown_shape_category_is_unknown_category() -> None:
    sim = make(VirtualClock())
    with pytest.raises(UnknownCategory) as info:
        await sim.submit(PROMPT, owner="key:a", shape=JobShape(category="teleport"))
    assert info.value.category == "teleport"
    assert "price" in info.value.known


async def test_forcing_an_outcome_retries_on_a_racing_change_and_sees_it() -> None:
    # The racing cancel lands first; the retry reads the fresh record and refuses.
    clock = VirtualClock()
    store = RacingStore(clock)
    sim = make(clock, store)
    job = await sim.submit(PROMPT, owner="key:a")
    with pytest.raises(JobFinished) as info:
        await sim.force(job.id, outcome="failed", error="boom")
    assert (info.value.status, info.value.action) == ("cancelled", "steer")
    assert store.raced == 1


async def test_cancelling_retries_on_a_racing_change_like_forcing() -> None:
    clock = VirtualClock()
    store = RacingStore(clock)
    sim = make(clock, store)
    job = await sim.submit(PROMPT, owner="key:a")
    result = await sim.cancel(job.id, owner="key:a")  # idempotent on the racing cancel
    assert status_of(result, clock.now()) is JobStatus.CANCELLED
    assert store.raced == 1


async def test_forcing_an_outcome_returns_the_new_record_and_its_instant() -> None:
    clock = VirtualClock()
    sim = make(clock)
    job = await sim.submit(PROMPT, owner="key:a")
    forced, at = await sim.force(job.id, outcome="failed", error="boom", finish_in=5)
    assert at == clock.now()
    assert forced.failed
    assert forced.error == "boom"
    assert forced.finished_at == at + 5
    assert await sim.inspect(job.id) == forced


async def test_reset_gives_back_the_memory_of_jobs_and_their_encoded_bodies() -> None:
    clock = VirtualClock()
    sim = make(clock)
    owner = "key:bk_1"
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(300):
            job = await sim.submit(f"{i} " + "x" * 4000, owner=owner)  # a 4 kB prompt
            await sim.poll(job.id, owner=owner)  # its body is encoded and kept
        grown = tracemalloc.get_traced_memory()[0] - before
        assert sim.cached_bodies == 300
        await sim.reset()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert sim.cached_bodies == 0
    assert grown > 300 * 8000  # each job's prompt twice: in its record and its body
    assert kept < grown / 10, f"reset kept {kept:,} of {grown:,} bytes"
