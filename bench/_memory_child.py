"""The memory benchmark's fresh process: ``python -m bench._memory_child --jobs N``.

Builds the app on an empty :class:`~mockbankr.store.MemoryStore`, reads VmRSS,
submits ``N`` jobs through ``Simulator.submit`` exactly as ``POST /agent/prompt``
does (a distinct prompt object per job, ``"key:" + key`` as the owner, a thread id
from the request for one job in ten), collects garbage, reads VmRSS again and
prints one JSON line for the parent (:mod:`bench.memory`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import time

from bench._prompts import API_KEYS, prompt
from mockbankr.app import create_app
from mockbankr.clock import RealClock
from mockbankr.core import Simulator
from mockbankr.settings import Settings
from mockbankr.store import MemoryStore

__all__ = ["main", "rss_bytes"]

#: One job in this many continues an earlier thread (``threadId`` in the request).
THREAD_EVERY = 10


def rss_bytes() -> int:
    """This process's resident set size, from ``/proc/self/status``."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmRSS line in /proc/self/status")


async def _fill(sim: Simulator, jobs: int) -> None:
    thread = "thr_0000000000000"
    for i in range(jobs):
        key = API_KEYS[i % len(API_KEYS)]
        # A thread id arrives from JSON as a fresh string, like the prompt.
        thread_id = f"{thread[:4]}{thread[4:]}" if i % THREAD_EVERY == 9 else None
        job = await sim.submit(prompt(i), owner="key:" + key, thread_id=thread_id)
        if i % THREAD_EVERY == 0:
            thread = "thr_" + job.id[4:]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._memory_child")
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    store = MemoryStore()
    # RealClock, as `mockbankr serve` uses: every job gets its own float timestamps.
    app = create_app(
        Settings(seed=args.seed), clock=RealClock(), rng=random.Random(args.seed), store=store
    )
    sim: Simulator = app.state.simulator
    gc.collect()
    empty = rss_bytes()

    started = time.perf_counter()
    asyncio.run(_fill(sim, args.jobs))
    seconds = time.perf_counter() - started

    gc.collect()
    full = rss_bytes()
    count = asyncio.run(store.count())
    print(json.dumps({"jobs": count, "rss_empty": empty, "rss_full": full, "seconds": seconds}))


if __name__ == "__main__":
    main()
