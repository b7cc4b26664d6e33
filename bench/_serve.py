"""A server process of the poll benchmark: ``python -m bench._serve poll|bare --dir DIR``.

* ``poll``: mockbankr itself (``create_app``) on a :class:`~mockbankr.clock.ScaledClock`
  with a seed. Before serving, its store is filled with :data:`JOBS` jobs submitted
  through a :class:`~mockbankr.core.Simulator` as if they had arrived evenly over the
  last :data:`WINDOW_S` simulated seconds, from the prompt catalogue and a few API
  keys, so the population is a mix of pending, processing and finished jobs. The
  clock runs at :data:`SPEED`, so that mix barely moves during the benchmark. Writes
  ``DIR/ids`` (the polled key's job ids) and ``DIR/body.json`` (a poll response of
  median size).
* ``bare``: the baseline, a Starlette app with the same route pattern answering the
  pre-encoded ``DIR/body.json``: the framework and server cost without mockbankr.

Both run under :func:`serve`, one uvicorn configuration, on a free loopback port,
and print one JSON line (``{"port": ...}`` and facts for the report) once they accept
connections.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench._prompts import API_KEYS, prompt
from mockbankr.app import create_app
from mockbankr.clock import ScaledClock, VirtualClock
from mockbankr.core import Simulator
from mockbankr.jobs import JobRecord, status_of
from mockbankr.settings import Settings
from mockbankr.store import MemoryStore
from mockbankr.wire import JSONResponse

__all__ = ["JOBS", "POLLED_KEY", "SPEED", "WINDOW_S", "main", "serve"]

#: Live jobs in the store, spread over every key of the catalogue.
JOBS = 10_000
#: The key whose jobs are polled.
POLLED_KEY = API_KEYS[0]
#: Jobs arrived evenly over this many simulated seconds before the benchmark starts.
WINDOW_S = 12.0
#: Simulated seconds per wall second: the population ages ~2 s during a 40 s run.
SPEED = 0.05
SEED = 1


async def _prefill(sim: Simulator, clock: VirtualClock) -> list[JobRecord]:
    """Submit every job; the polled key's records, in submission order."""
    polled: list[JobRecord] = []
    step = WINDOW_S / JOBS
    for i in range(JOBS):
        key = API_KEYS[i % len(API_KEYS)]
        job = await sim.submit(prompt(i), owner="key:" + key)
        if key == POLLED_KEY:
            polled.append(job)
        clock.advance(step)
    return polled


def mock_app(out: Path) -> tuple[Starlette, dict[str, Any]]:
    """mockbankr with a pre-filled store; writes the ids and a typical body to ``out``."""
    now = time.time()
    clock = ScaledClock(SPEED, start=now)
    store = MemoryStore()
    app = create_app(Settings(seed=SEED), clock=clock, rng=random.Random(SEED), store=store)
    server_sim: Simulator = app.state.simulator
    # Submissions in the past: a Simulator over the same store and table whose
    # virtual clock walks from now - WINDOW_S to now, one step per job.
    arrivals = VirtualClock(start=now - WINDOW_S)
    filler = Simulator(server_sim.table, clock=arrivals, rng=random.Random(SEED), store=store)
    jobs = asyncio.run(_prefill(filler, arrivals))

    bodies = sorted((JSONResponse(server_sim.body(job)).body for job in jobs), key=len)
    mix = collections.Counter(status_of(job, clock.now()).value for job in jobs)
    (out / "ids").write_text("".join(f"{job.id}\n" for job in jobs), encoding="ascii")
    (out / "body.json").write_bytes(bodies[len(bodies) // 2])
    facts = {
        "jobs": asyncio.run(store.count()),
        "polled": len(jobs),
        "mix": dict(mix),
        "body_bytes_median": len(bodies[len(bodies) // 2]),
        "body_bytes_mean": statistics.fmean(len(b) for b in bodies),
    }
    return app, facts


def bare_app(out: Path) -> tuple[Starlette, dict[str, Any]]:
    """The baseline: one route answering a pre-encoded body read from ``out``."""
    body = (out / "body.json").read_bytes()

    async def job(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/agent/job/{job_id}", job, methods=["GET"])]), {
        "body_bytes": len(body)
    }


async def _serve_until_stopped(
    server: uvicorn.Server, sock: socket.socket, facts: dict[str, Any]
) -> None:
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving
            raise SystemExit("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    print(json.dumps(facts), flush=True)
    await serving


def serve(app: Starlette, facts: dict[str, Any]) -> None:
    """Serve ``app`` on a free 127.0.0.1 port until SIGTERM; announce it on stdout.

    The configuration of ``mockbankr serve``, made explicit: uvloop, httptools,
    no access log, log level warning.
    """
    # proto=IPPROTO_TCP: asyncio disables Nagle only on sockets that say so.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    facts = {"port": sock.getsockname()[1], **facts}
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(_serve_until_stopped(server, sock, facts))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._serve")
    parser.add_argument("kind", choices=["poll", "bare"])
    parser.add_argument("--dir", type=Path, required=True, help="where ids and body.json live")
    args = parser.parse_args()
    build = mock_app if args.kind == "poll" else bare_app
    serve(*build(args.dir))


if __name__ == "__main__":
    main()
