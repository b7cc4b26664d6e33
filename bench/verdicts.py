"""What grading costs: the verdicts of a 10,000-request journal from 100 clients (issue 14).

An in-process server on a virtual clock is given real traffic: :data:`CLIENTS` clients,
each a few lines of raw httpx, prompt and poll (every 2 s, some every 1 s, some polling a
finished job once more, some retrying a 503) until :data:`REQUESTS` requests are in the
journal, which holds exactly that many. Then, alternating for :data:`ROUNDS` rounds after
a warm-up, the same process answers ``GET /__mock/verdicts`` (every client graded, with
its evidence) and ``GET /__mock/journal?limit=10000`` (the same journal listed as JSON),
both through the ASGI app. The figure is the median over the rounds of the per-round
ratio; the A/A figure (the listing against itself, one request apart) says how much of a
ratio is noise here. Target: grading costs at most 3x the listing.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time

from bench.figures import BenchError, Figure, at_most, info
from mockbankr import Settings
from mockbankr.testing import MockbankrEnv

__all__ = ["CLIENTS", "REQUESTS", "ROUNDS", "TARGET", "run"]

logger = logging.getLogger("bench")

CLIENTS = 100
REQUESTS = 10_000
ROUNDS = 9
TARGET = 3.0
PROMPTS = ("What is the price of ETH?", "Swap 10 USDC for ETH", "Analyze the ETH market")


async def _client(env: MockbankrEnv, number: int, budget: list[int]) -> None:
    """One client: prompt, poll to the end, again, while the shared budget lasts."""
    headers = {"X-API-Key": f"bk_bench_{number:03d}", "User-Agent": f"bench/{number % 7}"}
    every = 1.0 if number % 10 == 0 else 2.0  # a tenth poll too fast
    extra = 1 if number % 10 == 1 else 0  # a tenth poll a finished job once more
    for asked in range(REQUESTS):
        if budget[0] <= 0:
            return
        budget[0] -= 1
        prompt = f"{PROMPTS[number % len(PROMPTS)]} ({asked})"  # a new question each time
        extra_headers = {"X-Mockbankr-Fault": "503"} if number % 10 == 2 else {}
        answer = await env.http.post(
            "/agent/prompt", json={"prompt": prompt}, headers={**headers, **extra_headers}
        )
        if answer.status_code != 202:
            await env.clock.sleep(1.0)
            continue
        job_id = answer.json()["jobId"]
        seen_end = 0
        while budget[0] > 0:
            budget[0] -= 1
            body = (await env.http.get(f"/agent/job/{job_id}", headers=headers)).json()
            if body["status"] in ("completed", "failed", "cancelled"):
                seen_end += 1
                if seen_end > extra:
                    break
            await env.clock.sleep(every)
        await env.clock.sleep(5.0)


async def _measure() -> list[Figure]:
    settings = Settings(seed=14, journal_size=REQUESTS)
    async with MockbankrEnv(seed=14, settings=settings) as env:
        budget = [REQUESTS]
        await asyncio.gather(*(_client(env, n, budget) for n in range(CLIENTS)))
        journal = env.app.state.journal
        if len(journal) != REQUESTS or journal.dropped:
            raise BenchError(f"the journal holds {len(journal)} requests, not {REQUESTS}")

        async def seconds(path: str) -> float:
            started = time.perf_counter()
            response = await env.http.get(path)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise BenchError(f"GET {path} answered {response.status_code}")
            return elapsed

        listing, grading = f"/__mock/journal?limit={REQUESTS}", "/__mock/verdicts"
        report = (await env.http.get(grading)).json()
        await seconds(listing)
        ratios, noise, listed, graded = [], [], [], []
        for _ in range(ROUNDS):
            first = await seconds(listing)
            grade = await seconds(grading)
            second = await seconds(listing)
            ratios.append(grade / first)
            noise.append(second / first)
            listed.append(first)
            graded.append(grade)
    clients = len(report["clients"])
    failing = sum(1 for client in report["clients"] if client["failed"])
    logger.info("verdicts: %d clients graded, %d failing a check", clients, failing)
    if clients != CLIENTS:
        raise BenchError(f"graded {clients} clients, expected {CLIENTS}")
    return [
        at_most("grading / listing the journal", statistics.median(ratios), "x", TARGET),
        info("A/A: listing / listing", statistics.median(noise), "x"),
        info("grading 10,000 requests of 100 clients", statistics.median(graded) * 1000, "ms"),
        info("listing them as JSON", statistics.median(listed) * 1000, "ms"),
    ]


def run() -> list[Figure]:
    quiet = logging.getLogger("httpx")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # one line per request otherwise
    try:
        return asyncio.run(_measure())
    finally:
        quiet.setLevel(level)
