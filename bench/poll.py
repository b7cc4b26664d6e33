"""Status-poll throughput: ``GET /agent/job/{id}`` as a ratio to a bare Starlette endpoint.

Two uvicorn processes run side by side on one core (:mod:`bench._serve`): mockbankr
with 10,000 live jobs, and the baseline, a Starlette route answering a pre-encoded
body of a typical poll response's size. wrk runs on another core (``-t1 -c32``),
polling random job ids of one API key (``_poll.lua``); both servers get the very
same requests. Runs alternate bare, mock, bare, mock, ... after a warm-up of each.

The target figure is the median over the rounds of the ratio of requests per
CPU-second of the server process: the req/s ratio when each server saturates its
core, and unmoved when other processes take a share of that core. Target: 0.75.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._serve import POLLED_KEY
from bench.figures import BenchError, Figure, at_least, info

__all__ = ["ROUNDS", "TARGET_RATIO", "run"]

logger = logging.getLogger("bench")

TARGET_RATIO = 0.75
#: Below this share of wall time on its core, a server was sharing the core with others.
BUSY_WARNING = 0.9
ROUNDS = 7
DURATION_S = 3
WARMUP_S = 2
CONNECTIONS = 32
#: A server must announce its port within this many seconds.
START_TIMEOUT_S = 30
_TICKS = os.sysconf("SC_CLK_TCK")
LUA = Path(__file__).with_name("_poll.lua")
#: The command of a benchmark server, followed by ``poll|bare --dir DIR``.
SERVE = [sys.executable, "-m", "bench._serve"]


@dataclass(frozen=True)
class _Server:
    kind: str
    url: str
    pid: int
    facts: dict[str, Any]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass(frozen=True)
class _Run:
    rps: float
    #: Requests per CPU-second of the server: the same as ``rps`` when the server
    #: saturates its core, and unaffected by other processes stealing that core.
    rps_cpu: float
    #: The share of the wall time the server was on a CPU (1.0 = saturated).
    busy: float
    p50_ms: float
    p99_ms: float
    bytes_per_request: float


def _cpus() -> tuple[str | None, str | None]:
    """The cores for the servers and for wrk, or ``None`` when pinning is impossible."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        logger.warning("poll: fewer than 2 cores or no taskset: running unpinned")
        return None, None
    return str(cpus[0]), str(cpus[1])


def _pinned(cpu: str | None, command: list[str]) -> list[str]:
    return command if cpu is None else ["taskset", "-c", cpu, *command]


@contextlib.contextmanager
def _server(
    kind: str,
    workdir: Path,
    cpu: str | None,
    *,
    wrapper: Sequence[str] = (),
    start_timeout: float = START_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> Iterator[_Server]:
    """Start ``python -m bench._serve KIND``, wait for its announcement, stop it after.

    ``wrapper`` runs it under another program (valgrind); the server's ``pid`` is then
    the one it announces, the Python process itself.
    """
    log = (workdir / f"{kind}.log").open("w+b")
    proc = subprocess.Popen(
        _pinned(cpu, [*wrapper, *SERVE, kind, "--dir", str(workdir)]),
        stdout=subprocess.PIPE,
        stderr=log,
        env=None if env is None else {**os.environ, **env},
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], start_timeout)
        line = proc.stdout.readline() if ready else b""
        if not line:
            proc.kill()
            proc.wait()
            log.seek(0)
            raise BenchError(
                f"the {kind} server did not start:\n{log.read().decode(errors='replace')}"
            )
        facts = json.loads(line)
        yield _Server(kind, f"http://127.0.0.1:{facts['port']}", facts["pid"], facts)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def wrk_binary() -> str:
    """The ``wrk`` program, or a :class:`~bench.figures.BenchError` saying how to get it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk is not installed: apt-get install -y wrk")
    return wrk


@contextlib.contextmanager
def joined_servers(roles: Mapping[str, str]) -> Iterator[tuple[Path, list[_Server]]]:
    """One server process holding an app per role (``roles``: role to ``bench._serve``
    kind, joined by ``+``), on the server core; the work directory and a :class:`_Server`
    per role, in the order of ``roles``."""
    server_cpu, _ = _cpus()
    with (
        tempfile.TemporaryDirectory(prefix="mockbankr-bench-") as tmp,
        _server("+".join(roles.values()), Path(tmp), server_cpu) as process,
    ):
        yield (
            Path(tmp),
            [
                _Server(role, f"http://127.0.0.1:{app['port']}", process.pid, app)
                for role, app in zip(roles, process.facts["servers"], strict=True)
            ],
        )


def rotated_rounds(
    name: str,
    wrk: str,
    servers: Sequence[_Server],
    workdir: Path,
    *,
    rounds: int,
    warmup_s: int,
    duration_s: int,
) -> dict[str, list[_Run]]:
    """Warm every server up, then ``rounds`` rounds of one wrk run each, the order rotated
    every round (so no server always runs first); the runs by server kind."""
    _, wrk_cpu = _cpus()
    runs: dict[str, list[_Run]] = {server.kind: [] for server in servers}
    for server in servers:
        _wrk(wrk, server, workdir, wrk_cpu, warmup_s)
    for round_ in range(rounds):
        shift = round_ % len(servers)
        for server in [*servers[shift:], *servers[:shift]]:
            runs[server.kind].append(_wrk(wrk, server, workdir, wrk_cpu, duration_s))
        logger.info(
            "%s: round %d, req/CPU-s: %s",
            name,
            round_ + 1,
            ", ".join(f"{kind} {kind_runs[-1].rps_cpu:,.0f}" for kind, kind_runs in runs.items()),
        )
    return runs


def _check(server: _Server, workdir: Path) -> None:
    """One request by hand: the server answers 200 with a job body for a polled id."""
    job_id = (workdir / "ids").read_text(encoding="ascii").split()[0]
    request = urllib.request.Request(
        f"{server.url}/agent/job/{job_id}", headers={"X-API-Key": POLLED_KEY}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.loads(response.read())
    except OSError as exc:  # URLError and HTTPError included
        raise BenchError(f"{server.kind}: GET {request.full_url} failed: {exc}") from exc
    if response.status != 200 or "jobId" not in body:
        raise BenchError(f"{server.kind}: unexpected answer {response.status} {body}")


def _wrk(wrk: str, server: _Server, workdir: Path, cpu: str | None, seconds: int) -> _Run:
    command = [
        wrk,
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "-s",
        str(LUA),
        server.url,
        "--",
        str(workdir / "ids"),
        POLLED_KEY,
        "1",
    ]
    cpu_before = server.cpu_seconds()
    done = subprocess.run(
        _pinned(cpu, command), capture_output=True, text=True, timeout=seconds + 20, check=False
    )
    cpu_used = server.cpu_seconds() - cpu_before
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(lines[-1].removeprefix("BENCH "))
    errors = {k: result[k] for k in ("connect", "read", "write", "status", "timeout") if result[k]}
    if errors or not result["requests"]:
        raise BenchError(f"{server.kind}: wrk saw errors {errors} (non-2xx = status)")
    wall = result["duration_us"] / 1e6
    return _Run(
        rps=result["requests"] / wall,
        rps_cpu=result["requests"] / cpu_used,
        busy=cpu_used / wall,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        bytes_per_request=result["bytes"] / result["requests"],
    )


def run() -> list[Figure]:
    wrk = wrk_binary()
    server_cpu, wrk_cpu = _cpus()
    runs: dict[str, list[_Run]] = {"bare": [], "poll": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mockbankr-bench-") as tmp:
        workdir = Path(tmp)
        # mock first: it writes the ids and the typical body the baseline serves.
        with (
            _server("poll", workdir, server_cpu) as mock,
            _server("bare", workdir, server_cpu) as bare,
        ):
            logger.info("poll: mockbankr up with %s", mock.facts)
            for server in (bare, mock):
                _check(server, workdir)
                _wrk(wrk, server, workdir, wrk_cpu, WARMUP_S)
            for round_ in range(1, ROUNDS + 1):
                for server in (bare, mock):
                    result = _wrk(wrk, server, workdir, wrk_cpu, DURATION_S)
                    runs[server.kind].append(result)
                    logger.info(
                        "poll: round %d %-4s %6.0f req/s, %6.0f req/CPU-s (busy %3.0f%%),"
                        " p50 %.1f ms, p99 %.1f ms, %.0f B/resp",
                        round_,
                        server.kind,
                        result.rps,
                        result.rps_cpu,
                        100 * result.busy,
                        result.p50_ms,
                        result.p99_ms,
                        result.bytes_per_request,
                    )
    logger.info("poll: done in %.0f s", time.perf_counter() - started)
    return _figures(runs["bare"], runs["poll"], mock.facts, bare.facts)


def _figures(
    bare: list[_Run], mock: list[_Run], mock_facts: dict[str, Any], bare_facts: dict[str, Any]
) -> list[Figure]:
    pairs = list(zip(bare, mock, strict=True))
    cpu_ratio = statistics.median(m.rps_cpu / b.rps_cpu for b, m in pairs)
    wall_ratio = statistics.median(m.rps / b.rps for b, m in pairs)
    busy = min(r.busy for r in bare + mock)
    if busy < BUSY_WARNING:
        logger.warning(
            "poll: a server was on its core only %.0f%% of a run: something else is using"
            " the cores, so the req/s figures are noise; the per-CPU-second ones still hold",
            100 * busy,
        )
    polled = mock_facts["polled"]
    return [
        at_least(
            "throughput per server CPU-second, mockbankr / bare", cpu_ratio, "x", TARGET_RATIO
        ),
        info("throughput per wall second, mockbankr / bare", wall_ratio, "x"),
        info("bare Starlette, median", statistics.median(r.rps_cpu for r in bare), "req/CPU-s"),
        info("mockbankr, median", statistics.median(r.rps_cpu for r in mock), "req/CPU-s"),
        info("bare Starlette, median", statistics.median(r.rps for r in bare), "req/s"),
        info("mockbankr, median", statistics.median(r.rps for r in mock), "req/s"),
        info("server on its core, lowest of all runs", 100 * busy, "%"),
        info("mockbankr p99 latency, median", statistics.median(r.p99_ms for r in mock), "ms"),
        info("baseline body (median poll body)", bare_facts["body_bytes"], "B"),
        info("jobs in the store", mock_facts["jobs"], "jobs"),
        *(
            info(f"polled jobs {status} at start", 100 * count / polled, "%")
            for status, count in sorted(mock_facts["mix"].items())
        ),
    ]
