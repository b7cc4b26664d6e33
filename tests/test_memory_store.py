"""The memory store's scan: every match, in order, without holding the event loop."""

from __future__ import annotations

import asyncio

from mockbankr.jobs import JobRecord
from mockbankr.store import SCAN_SLICE, MemoryStore


def record(n: int) -> JobRecord:
    return JobRecord(f"job_{n:06d}", "key:bk_1", "price of ETH?", None, "price", 1.0, 2.0, 5.0)


def filled(count: int) -> MemoryStore:
    store = MemoryStore()

    async def fill() -> None:
        for n in range(count):
            assert await store.add(record(n))

    asyncio.run(fill())
    return store


def test_a_scan_gives_the_page_and_the_total_in_submission_order() -> None:
    store = filled(3 * SCAN_SLICE + 5)

    def odd(job: JobRecord) -> bool:
        return int(job.id[4:]) % 2 == 1

    page, total = asyncio.run(store.scan(odd, offset=SCAN_SLICE - 2, limit=4))

    assert total == (3 * SCAN_SLICE + 5) // 2
    assert [job.id for job in page] == [
        f"job_{2 * k + 1:06d}" for k in range(SCAN_SLICE - 2, SCAN_SLICE + 2)
    ]


def test_a_walk_of_many_jobs_lets_other_tasks_run_while_it_reads() -> None:
    store = filled(20 * SCAN_SLICE)
    ticks_during_scan = 0

    async def main() -> int:
        nonlocal ticks_during_scan
        scanning = asyncio.ensure_future(store.scan(lambda job: True, offset=0, limit=1))
        while not scanning.done():
            ticks_during_scan += 1
            await asyncio.sleep(0)
        return (await scanning)[1]

    assert asyncio.run(main()) == 20 * SCAN_SLICE
    # One slice at a time: the other task ran between slices, not once after the whole walk.
    assert ticks_during_scan >= 10
