"""The reference client on ``MockbankrEnv``: a 300 s poll-to-timeout, and its cost per request.

Two figures (issue 3), both in-process on one event loop, on a fresh
:class:`~mockbankr.testing.MockbankrEnv` per run:

* **poll-to-timeout wall time.** A rule makes ``"stuck"`` prompts stay processing;
  ``env.client.prompt_and_wait("stuck price", timeout=300, max_attempts=1000)`` then
  prompts once and polls every 2 simulated seconds until it raises
  ``PollTimeoutError`` at exactly 300 simulated seconds (150 polls). Timed: that
  call alone (not building the env). One warm-up run is dropped; the figure is the
  median over :data:`SCENARIO_RUNS`. Target: under 50 ms. Beside it, the same run's
  baseline, :data:`POLLS` bare ``httpx.AsyncClient.get`` of a stuck job on the same
  transport (so through the same rule), and the ratio of the two.
* **overhead per status request.** ``client.get_job_status(id)`` against a bare
  ``httpx.AsyncClient(transport=env.transport).get(url, headers=...)`` of the same
  job, in batches of :data:`STATUS_BATCH` that alternate (bare first, then client
  first, ...) for :data:`STATUS_ROUNDS` rounds, on an env without rules (the app's
  fast path, so the client's share is as large as it gets). The figure is the
  median of the per-round ratios of time per request. Target: under 1.3x.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator

import httpx
from bankr_client import PollTimeoutError

from bench.figures import BenchError, Figure, at_most, info
from mockbankr.testing import MockbankrEnv

__all__ = ["POLLS", "SCENARIO_RUNS", "STATUS_BATCH", "STATUS_ROUNDS", "quiet_httpx", "run"]

logger = logging.getLogger("bench")

TARGET_SCENARIO_MS = 50.0
TARGET_STATUS_RATIO = 1.3
#: Timed runs of the poll-to-timeout scenario (after one warm-up run).
SCENARIO_RUNS = 9
TIMEOUT_S = 300.0
INTERVAL_S = 2.0
#: Status requests in the scenario: one per interval until the deadline.
POLLS = int(TIMEOUT_S / INTERVAL_S)
STATUS_ROUNDS = 15
STATUS_BATCH = 200
STUCK_RULE = {"match": {"prompt": "stuck"}, "action": {"job": {"outcome": "stuck"}}}


async def _timed(call: Callable[[], Awaitable[object]], times: int) -> float:
    """Seconds for ``times`` sequential awaits of ``call()``, after a garbage collection."""
    gc.collect()
    started = time.perf_counter()
    for _ in range(times):
        await call()
    return time.perf_counter() - started


async def _scenario_run(seed: int, bare_first: bool) -> tuple[float, float]:
    """One fresh env: (scenario seconds, seconds of POLLS bare GETs), in the given order."""
    async with MockbankrEnv(seed=seed) as env:
        answer = await env.http.post("/__mock/rules", json=STUCK_RULE)
        if answer.status_code != 201:
            raise BenchError(f"client: POST /__mock/rules answered {answer.status_code}")
        # The baseline's job: stuck as well, so its polls take the same path.
        accepted = await env.http.post(
            "/agent/prompt", json={"prompt": "stuck ETH"}, headers={"X-API-Key": env.api_key}
        )
        path = f"/agent/job/{accepted.json()['jobId']}"
        headers = {"X-API-Key": env.api_key}

        async def bare_get() -> None:
            response = await env.http.get(path, headers=headers)
            if response.status_code != 200:
                raise BenchError(f"client: bare GET {path} answered {response.status_code}")

        async def scenario() -> None:
            start = env.clock.now()
            polls_before = len(env.app.state.journal)
            try:
                await env.client.prompt_and_wait(
                    "stuck price", interval=INTERVAL_S, timeout=TIMEOUT_S, max_attempts=1000
                )
            except PollTimeoutError:
                pass
            else:
                raise BenchError("client: prompt_and_wait returned instead of timing out")
            elapsed = env.clock.now() - start
            requests = len(env.app.state.journal) - polls_before
            if elapsed != TIMEOUT_S or requests != POLLS + 1:
                raise BenchError(
                    f"client: timed out after {elapsed} simulated s and {requests} requests,"
                    f" expected {TIMEOUT_S} s and {POLLS + 1} (1 prompt + {POLLS} polls)"
                )

        if bare_first:
            bare = await _timed(bare_get, POLLS)
            client = await _timed(scenario, 1)
        else:
            client = await _timed(scenario, 1)
            bare = await _timed(bare_get, POLLS)
        return client, bare


async def _scenario() -> tuple[list[float], list[float]]:
    await _scenario_run(0, True)  # warm-up: imports, first calls, caches
    client: list[float] = []
    bare: list[float] = []
    for i in range(SCENARIO_RUNS):
        c, b = await _scenario_run(i + 1, bare_first=i % 2 == 1)
        client.append(c)
        bare.append(b)
        logger.info(
            "client: run %d, poll-to-timeout %.1f ms, %d bare GETs %.1f ms",
            i + 1,
            1000 * c,
            POLLS,
            1000 * b,
        )
    return client, bare


async def _status_overhead() -> tuple[list[float], list[float]]:
    """Per-request seconds of (bare GET, client.get_job_status), one pair per round."""
    async with MockbankrEnv(seed=1) as env:
        client = env.client
        job_id = (await client.prompt("What is the price of ETH?")).job_id
        url = f"{env.base_url}/agent/job/{job_id}"
        headers = {"X-API-Key": env.api_key}
        async with httpx.AsyncClient(transport=env.transport) as http:

            async def bare_get() -> None:
                response = await http.get(url, headers=headers)
                if response.status_code != 200:
                    raise BenchError(f"client: bare GET {url} answered {response.status_code}")

            async def status() -> None:
                await client.get_job_status(job_id)

            await _timed(bare_get, STATUS_BATCH)  # warm-up of both
            await _timed(status, STATUS_BATCH)
            bare: list[float] = []
            ours: list[float] = []
            for round_ in range(STATUS_ROUNDS):
                if round_ % 2 == 0:
                    bare.append(await _timed(bare_get, STATUS_BATCH) / STATUS_BATCH)
                    ours.append(await _timed(status, STATUS_BATCH) / STATUS_BATCH)
                else:
                    ours.append(await _timed(status, STATUS_BATCH) / STATUS_BATCH)
                    bare.append(await _timed(bare_get, STATUS_BATCH) / STATUS_BATCH)
    return bare, ours


@contextlib.contextmanager
def quiet_httpx() -> Iterator[None]:
    """Silence httpx's per-request INFO lines (the harness logs at INFO) while timing."""
    httpx_logger = logging.getLogger("httpx")
    level = httpx_logger.level
    httpx_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        httpx_logger.setLevel(level)


def run() -> list[Figure]:
    started = time.perf_counter()
    with quiet_httpx():
        client, bare = asyncio.run(_scenario())
        status_bare, status_client = asyncio.run(_status_overhead())
    logger.info(
        "client: status requests, bare %.0f us, client %.0f us (medians); done in %.0f s",
        1e6 * statistics.median(status_bare),
        1e6 * statistics.median(status_client),
        time.perf_counter() - started,
    )
    scenario_ms = 1000 * statistics.median(client)
    status_ratio = statistics.median(c / b for b, c in zip(status_bare, status_client, strict=True))
    return [
        at_most("300 s poll-to-timeout, wall time, median", scenario_ms, "ms", TARGET_SCENARIO_MS),
        info(
            f"poll-to-timeout / {POLLS} bare GETs, median",
            statistics.median(c / b for c, b in zip(client, bare, strict=True)),
            "x",
        ),
        info(
            f"{POLLS} bare GETs on the same transport, median", 1000 * statistics.median(bare), "ms"
        ),
        at_most("status request, client / bare httpx GET", status_ratio, "x", TARGET_STATUS_RATIO),
        info("status request, bare httpx GET, median", 1e6 * statistics.median(status_bare), "us"),
        info("status request, client, median", 1e6 * statistics.median(status_client), "us"),
    ]
