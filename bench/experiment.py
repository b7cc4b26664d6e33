"""Experiments (issue 15): how fast a fleet runs in-process, and what a live fleet costs.

Three figures, each against a baseline measured in the same run:

* **in-process rate.** The ``fleet`` experiment below (200 agents, the reference policy)
  in-process on virtual time: agent requests (the journal's count) per wall second,
  against the same number of bare ``httpx.AsyncClient.get`` status polls through the same
  in-process transport, from as many concurrent tasks. Target: at least 0.7x.
* **the shipped 1,000-agent example** (``fixtures/experiments/fleet-1000.toml``), each
  policy in-process: simulated seconds over wall seconds. Reported.
* **live CPU.** 1,000 agents (the reference policy) against ``mockbankr serve --speed 20``
  in another process, run by :func:`mockbankr.experiments.live.run_live` in this one: this
  process's CPU seconds per request against the server's (``/proc``), over the fleet alone
  (from its first agent to its last answer: not the start-up, the reset, nor reading the
  records back for the report). Target: at most 1.0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from bench.figures import BenchError, Figure, at_least, at_most, info
from mockbankr.experiments import load_experiment, parse_experiment
from mockbankr.experiments.live import run_blocking, run_live
from mockbankr.experiments.plan import plan_tasks
from mockbankr.experiments.runner import run_experiment, run_policy
from mockbankr.testing import MockbankrEnv
from mockbankr.timing import load_timing

__all__ = ["FLEET", "LIVE_AGENTS", "run"]

REPO = Path(__file__).resolve().parents[1]
FLEET = 200
LIVE_AGENTS = 1000


def _spec(agents: int, duration: float) -> dict[str, object]:
    return {
        "experiment": {"name": "bench", "seed": 1, "duration_s": duration},
        "fleet": {"agents": agents, "mix": {"price": 2.0, "swap": 1.0, "balance": 1.0}},
        "policies": [{"name": "reference", "kind": "reference"}],
    }


async def _bare(requests: int, concurrency: int) -> float:
    """Wall seconds for ``requests`` bare status polls from ``concurrency`` tasks."""
    async with MockbankrEnv(seed=1) as env:
        headers = {"X-API-Key": env.api_key}
        accepted = await env.http.post(
            "/agent/prompt", json={"prompt": "price of ETH"}, headers=headers
        )
        path = f"/agent/job/{accepted.json()['jobId']}"
        each = max(1, requests // concurrency)

        async def worker() -> None:
            for _ in range(each):
                response = await env.http.get(path, headers=headers)
                if response.status_code != 200:
                    raise BenchError(f"experiment: bare GET answered {response.status_code}")

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        return time.perf_counter() - started


def _quiet_httpx() -> None:
    """``make bench`` logs at INFO, and httpx.AsyncClient logs every request there (through
    rich): the bare baseline would pay for that and the agents (which send straight to the
    transport) would not. Neither logs here."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _in_process() -> list[Figure]:
    _quiet_httpx()
    spec = parse_experiment(_spec(FLEET, 10.0))
    table = load_timing()
    tasks = plan_tasks(spec, table)
    run = asyncio.run(run_policy(spec, spec.policies[0], tasks, table))
    requests = len(run.records.entries)
    rate = requests / run.wall_s
    bare = requests / asyncio.run(_bare(requests, FLEET))
    return [
        at_least("in-process agent requests / bare requests", rate / bare, "x", 0.7),
        info("in-process agent requests per wall second", rate, "req/s"),
        info("bare in-process requests per wall second", bare, "req/s"),
    ]


def _fleet_1000() -> list[Figure]:
    spec = load_experiment(REPO / "fixtures" / "experiments" / "fleet-1000.toml")
    results, _ = asyncio.run(run_experiment(spec))
    figures = []
    for policy in results["policies"]:
        speedup = policy["metrics"]["end_s"] / policy["wall_s"]
        figures.append(info(f"fleet-1000 {policy['name']}: simulated / wall", speedup, "x"))
    return figures


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _live() -> list[Figure]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mockbankr"),
            "serve",
            "--port",
            str(port),
            "--speed",
            "20",
            "--seed",
            "1",
            "--journal-size",
            "1000000",
        ],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/_health", timeout=1.0)
                break
            except httpx.HTTPError:
                threading.Event().wait(0.1)
        else:
            raise BenchError("experiment: mockbankr serve did not start")
        spec = parse_experiment(_spec(LIVE_AGENTS, 10.0))
        marks: dict[str, tuple[float, float, float]] = {}

        def mark(when: str) -> None:
            mine = resource.getrusage(resource.RUSAGE_SELF)
            marks[when] = (mine.ru_utime + mine.ru_stime, _cpu(server.pid), time.perf_counter())

        results, _ = run_blocking(run_live(spec, url, on_fleet=mark))
    finally:
        server.terminate()
        server.wait(10)
    client_cpu, server_cpu, wall = (
        b - a for a, b in zip(marks["start"], marks["end"], strict=True)
    )
    policy = results["policies"][0]
    requests = policy["metrics"]["requests"]
    if not policy["journal"]["covered"] or requests == 0:
        raise BenchError("experiment: the server's journal did not cover the live run")
    return [
        at_most(
            "live 1,000 agents: client CPU / server CPU per request",
            client_cpu / server_cpu,
            "x",
            1.0,
        ),
        info("live: client CPU per request", client_cpu / requests * 1000, "ms"),
        info("live: server CPU per request", server_cpu / requests * 1000, "ms"),
        info("live: requests", requests, "req"),
        info("live: the fleet's wall time", wall, "s"),
    ]


def run() -> list[Figure]:
    return _in_process() + _fleet_1000() + _live()
