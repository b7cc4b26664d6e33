"""Scale-out (issue 16): status polls on the Redis store and on granian, and Redis memory.

1. Status polls (``GET /agent/job/{id}``, as :mod:`bench.poll` measures them) of four
   servers, one process each on one core, wrk on another, in alternating rounds: bare
   Starlette on uvicorn (the baseline), mockbankr on the memory store, mockbankr on the
   Redis store (one worker; its clock, rules and limits shared too: one Redis round trip per
   poll), mockbankr on granian (memory store), and bare Starlette on granian (what any
   Starlette app gains from granian: the ceiling of the granian figure). Each figure is
   requests per server CPU-second over the baseline's (granian: its worker's and its main
   process's CPU).
   Targets: Redis at least 0.5x the memory store's ratio; granian at least 1.7x bare
   Starlette on uvicorn. Redis itself runs on wrk's core and its CPU is not counted.
2. Redis memory per live job: ``INFO memory`` ``used_memory`` before and after
   :data:`MEMORY_JOBS` jobs submitted through the simulator, over the count. Target: at
   most 1 KiB.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench._prompts import API_KEYS, prompt
from bench.figures import BenchError, Figure, at_least, at_most, info
from bench.poll import _check, _cpus, _pinned, _Run, _Server, _server, _wrk, wrk_binary

__all__ = ["MEMORY_JOBS", "run"]

logger = logging.getLogger("bench")

ROUNDS = 5
DURATION_S = 3
WARMUP_S = 2
REDIS_TARGET = 0.5
GRANIAN_TARGET = 1.7
MEMORY_JOBS = 100_000
MEMORY_TARGET = 1024.0
#: Submissions in flight at once while filling Redis.
_BATCH = 64


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _redis(workdir: Path, cpu: str | None) -> Iterator[str]:
    """A private redis-server (nothing persisted) on a free port; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError("redis-server is not installed: apt-get install -y redis-server")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    args += ["no", "--dir", str(workdir)]
    proc = subprocess.Popen(
        _pinned(cpu, args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise BenchError("redis-server did not start")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclasses.dataclass(frozen=True)
class _Tree(_Server):
    """A server whose CPU time is its process's and every descendant's (granian's worker)."""

    def cpu_seconds(self) -> float:
        total = 0.0
        pending = [self.pid]
        while pending:
            pid = pending.pop()
            total += dataclasses.replace(self, pid=pid).cpu_seconds_of_one()
            for task in Path(f"/proc/{pid}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(child) for child in children)
        return total

    def cpu_seconds_of_one(self) -> float:
        return _Server.cpu_seconds(self)


def _polls(wrk: str) -> list[Figure]:
    server_cpu, wrk_cpu = _cpus()
    runs: dict[str, list[_Run]] = {
        "bare": [],
        "poll": [],
        "redis": [],
        "granian": [],
        "granian-bare": [],
    }
    with tempfile.TemporaryDirectory(prefix="mockbankr-bench-") as tmp:
        workdir = Path(tmp)
        with _redis(workdir, wrk_cpu) as url:
            env = {"MOCKBANKR_BENCH_REDIS": url}
            with (
                _server("poll", workdir, server_cpu) as memory,
                _server("bare", workdir, server_cpu) as bare,
                _server("redis", workdir, server_cpu, env=env, start_timeout=300) as redis,
                _server("granian", workdir, server_cpu, start_timeout=120) as granian_main,
                _server("granian-bare", workdir, server_cpu, start_timeout=120) as bare_main,
            ):
                granian = _Tree(**dataclasses.asdict(granian_main))
                granian_bare = _Tree(**dataclasses.asdict(bare_main))
                servers = (bare, memory, redis, granian, granian_bare)
                for server in servers:
                    _check(server, workdir)
                    _wrk(wrk, server, workdir, wrk_cpu, WARMUP_S)
                for round_ in range(1, ROUNDS + 1):
                    for server in servers:
                        result = _wrk(wrk, server, workdir, wrk_cpu, DURATION_S)
                        runs[server.kind].append(result)
                        logger.info(
                            "scale: round %d %-12s %6.0f req/s, %6.0f req/CPU-s (busy %3.0f%%)",
                            round_,
                            server.kind,
                            result.rps,
                            result.rps_cpu,
                            100 * result.busy,
                        )

    def ratio(kind: str) -> float:
        pairs = zip(runs["bare"], runs[kind], strict=True)
        return statistics.median(m.rps_cpu / b.rps_cpu for b, m in pairs)

    memory_ratio, redis_ratio, granian_ratio = ratio("poll"), ratio("redis"), ratio("granian")
    return [
        at_least(
            "Redis store polls / memory store polls (each over bare Starlette, per CPU-s)",
            redis_ratio / memory_ratio,
            "x",
            REDIS_TARGET,
        ),
        info("memory store polls / bare Starlette, per CPU-s", memory_ratio, "x"),
        info("Redis store polls / bare Starlette, per CPU-s", redis_ratio, "x"),
        at_least(
            "granian polls (memory store) / bare Starlette on uvicorn, per CPU-s",
            granian_ratio,
            "x",
            GRANIAN_TARGET,
        ),
        info(
            "bare Starlette on granian / bare Starlette on uvicorn, per CPU-s (the most any"
            " Starlette app gains on granian)",
            ratio("granian-bare"),
            "x",
        ),
        *(
            info(f"{kind}, median", statistics.median(r.rps for r in runs[kind]), "req/s")
            for kind in runs
        ),
    ]


async def _fill(url: str, jobs: int) -> None:
    from mockbankr.clock import VirtualClock
    from mockbankr.core import Simulator
    from mockbankr.redis_store import RedisStore
    from mockbankr.timing import load_timing

    clock = VirtualClock()
    store = RedisStore(url)
    sim = Simulator(load_timing(None), clock=clock, rng=random.Random(1), store=store)
    for start in range(0, jobs, _BATCH):
        await asyncio.gather(
            *(
                sim.submit(prompt(i), owner="key:" + API_KEYS[i % len(API_KEYS)])
                for i in range(start, min(start + _BATCH, jobs))
            )
        )
    assert await store.count() == jobs
    await store.aclose()


def _used_memory(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def _memory() -> list[Figure]:
    with (
        tempfile.TemporaryDirectory(prefix="mockbankr-bench-") as tmp,
        _redis(Path(tmp), None) as url,
    ):
        before = _used_memory(url)
        started = time.perf_counter()
        asyncio.run(_fill(url, MEMORY_JOBS))
        seconds = time.perf_counter() - started
        after = _used_memory(url)
    per_job = (after - before) / MEMORY_JOBS
    return [
        at_most(f"Redis memory per live job at {MEMORY_JOBS:,} jobs", per_job, "B", MEMORY_TARGET),
        info(
            "jobs submitted into Redis per second (64 in flight)", MEMORY_JOBS / seconds, "jobs/s"
        ),
    ]


def run() -> list[Figure]:
    return [*_memory(), *_polls(wrk_binary())]
