"""Soak: 45 s of mixed submits and polls over a live ``mockbankr serve``, then its memory.

A ``mockbankr serve --speed 20 --seed 1`` (child process) is warmed up by a 2 s run,
reset, and measured (``VmRSS``); then wrk (:file:`_soak.lua`, one connection pool of
:data:`CONNECTIONS`) sends one API key's requests for :data:`SECONDS` seconds: one in
:data:`SUBMIT_EVERY` is a prompt, the others poll one of the last 1,000 jobs that thread
created. Jobs finish in a few simulated seconds (0.1-1.5 real ones at speed 20) and are
kept until a reset, as the simulator keeps them.

Figures, each against the same process a moment earlier:

* resident memory per job: RSS growth over the soak / jobs created (the jobs, their
  cached bodies, the request journal, which is full at 10,000 entries after a few
  seconds, and whatever the allocator holds);
* given back to the OS by ``POST /__mock/reset``: (RSS after the soak - RSS after the
  reset) / the growth, without a target. The simulator frees every job, encoded body,
  timestamp and journal entry; how much of that reaches the OS is the allocator's affair
  (CPython returns an arena only when it is wholly empty, glibc its heap only from the
  top), and in practice it is about nothing: the process keeps its peak;
* reuse (the target, <= 0.5): a second soak of the same length after the reset; its
  growth over the post-reset RSS, against the first soak's growth. Memory that reset
  freed is reused by the second soak, so this stays near 0 when reset frees everything
  (before issue 11 the encoded bodies, then the timers and timestamps, kept it at 0.6).

``python -m bench --only soak --soak-seconds 10`` shortens both soaks for a quick check.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from pathlib import Path

import httpx

from bench._live import LiveProcess, live_server, rss_bytes
from bench.figures import BenchError, Figure, at_most, info
from bench.poll import wrk_binary

__all__ = ["CONNECTIONS", "SECONDS", "SUBMIT_EVERY", "TARGET_REUSE", "run"]

logger = logging.getLogger("bench")

#: Seconds of each soak (``--soak-seconds`` changes it).
SECONDS = 45
#: One request in this many is a submit; the others are polls.
SUBMIT_EVERY = 10
CONNECTIONS = 8
LUA = Path(__file__).with_name("_soak.lua")
#: A second soak after a reset grows by at most this share of the first one's growth.
TARGET_REUSE = 0.5


def _wrk(wrk: str, server: LiveProcess, seconds: int) -> dict[str, int]:
    command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(LUA), server.url]
    done = subprocess.run(
        [*command, "--", str(SUBMIT_EVERY)],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"soak: wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, int] = json.loads(lines[-1].removeprefix("BENCH "))
    errors = {k: result[k] for k in ("connect", "read", "write", "status", "timeout") if result[k]}
    if errors or not result["requests"]:
        raise BenchError(f"soak: wrk saw errors {errors} (non-2xx = status)")
    return result


def _settled_rss(pid: int) -> int:
    """RSS once it stops moving (the allocator may give pages back a moment later)."""
    tick = threading.Event()
    last = rss_bytes(pid)
    for _ in range(10):
        tick.wait(0.2)
        now = rss_bytes(pid)
        if now == last:
            break
        last = now
    return last


def _jobs(http: httpx.Client) -> int:
    total: int = http.get("/__mock/jobs", params={"limit": 1}).json()["total"]
    return total


def _reset(http: httpx.Client) -> None:
    if http.post("/__mock/reset", json={}).status_code != 200:
        raise BenchError("soak: POST /__mock/reset failed")


def run(seconds: int = SECONDS) -> list[Figure]:
    wrk = wrk_binary()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with (
        live_server("--speed", "20", "--seed", "1") as server,
        httpx.Client(base_url=server.url, timeout=30.0) as http,
    ):
        _wrk(wrk, server, 2)  # warm-up: imports, caches, the journal's first entries
        _reset(http)
        before = _settled_rss(server.pid)
        started = time.perf_counter()
        soak = _wrk(wrk, server, seconds)
        jobs = _jobs(http)
        peak = _settled_rss(server.pid)
        _reset(http)
        if _jobs(http) != 0:
            raise BenchError("soak: jobs left after POST /__mock/reset")
        after_reset = _settled_rss(server.pid)
        again = _wrk(wrk, server, seconds)
        jobs_again = _jobs(http)
        second_peak = _settled_rss(server.pid)
        wall = time.perf_counter() - started
    growth = peak - before
    if jobs == 0 or growth <= 0:
        raise BenchError(f"soak: {jobs} jobs and an RSS growth of {growth} bytes: nothing to say")
    logger.info(
        "soak: RSS %.1f MB -> %.1f MB (%d jobs, %d requests) -> reset %.1f MB ->"
        " second soak %.1f MB (%d jobs) in %.0f s",
        before / 1e6,
        peak / 1e6,
        jobs,
        soak["requests"],
        after_reset / 1e6,
        second_peak / 1e6,
        jobs_again,
        wall,
    )
    return [
        info("resident memory per job after the soak", growth / jobs, "B/job"),
        info(
            "share of the soak's RSS growth given back to the OS by POST /__mock/reset",
            (peak - after_reset) / growth,
            "x",
        ),
        at_most(
            "second soak after the reset: RSS growth / the first soak's",
            (second_peak - after_reset) / growth,
            "x",
            TARGET_REUSE,
        ),
        info("jobs created in the soak", jobs, "jobs"),
        info("requests in the soak", soak["requests"], "req"),
        info("soak length", seconds, "s"),
        info("RSS before the soak (after warm-up and reset)", before / 1e6, "MB"),
        info("RSS after the soak", peak / 1e6, "MB"),
        info("RSS after POST /__mock/reset", after_reset / 1e6, "MB"),
        info("RSS after the second soak", second_peak / 1e6, "MB"),
        info("jobs created in the second soak", jobs_again, "jobs"),
        info("requests in the second soak", again["requests"], "req"),
    ]
