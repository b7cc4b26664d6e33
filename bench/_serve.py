"""A server process of the benchmarks: ``python -m bench._serve KIND --dir DIR``.

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
* ``unsteered``: ``poll`` with the steering middleware taken out of the app (no rules,
  no directives, no journal).
* ``journaled``: ``poll`` whose steering middleware never looks for a rule or a
  directive, but journals every request as usual: the baseline of the rules benchmark.
* ``rules``: ``poll`` with :data:`NON_MATCHING_RULES` installed at start: 100 rules no
  status poll matches.
* ``redis``: ``poll`` with its population in Redis (``MOCKBANKR_BENCH_REDIS``, a URL): the
  shared store, and the shared clock and rules, as ``--store redis://...`` serves them.
* ``granian``: ``poll`` served by granian (one worker process, which builds the
  population itself) instead of uvicorn; it announces once the worker answers.
* ``granian-bare``: ``bare`` served by granian: what any Starlette app gains on granian.
* ``unmetered``: ``poll`` with metrics off (``Settings(metrics=False)``, ``--no-metrics``):
  no request counters, the baseline of the metrics benchmark.
* ``prompt``: mockbankr on an empty store and a :class:`~mockbankr.clock.RealClock`
  (so x402 validity windows are checked on wall time): the x402 benchmark's server.

``poll``, ``unsteered``, ``journaled``, ``rules`` and ``unmetered`` can be joined by ``+``
(``journaled+poll+rules``):
one process then serves each of them on its own port, all over one pre-filled store,
so that they differ in nothing but the app (two processes running the very same code
can differ by several percent: memory layout, hash seed).

Every kind runs under :func:`serve`, one uvicorn configuration, on a free loopback
port, and the process prints one JSON line (``{"port": ...}``, ``servers`` and facts
for the report) once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import os
import random
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench._prompts import API_KEYS, prompt
from mockbankr.app import create_app
from mockbankr.clock import RealClock, ScaledClock, VirtualClock
from mockbankr.core import Simulator
from mockbankr.jobs import JobRecord, status_of
from mockbankr.rules import Rule, parse_rule
from mockbankr.settings import Settings
from mockbankr.steering import SteeringMiddleware
from mockbankr.store import JobStore, MemoryStore
from mockbankr.timing import TimingTable, load_timing
from mockbankr.wire import JSONResponse

__all__ = [
    "GRANIAN_KINDS",
    "JOBS",
    "MOCK_KINDS",
    "NON_MATCHING_RULES",
    "OTHER_KINDS",
    "POLLED_KEY",
    "Population",
    "SPEED",
    "WINDOW_S",
    "main",
    "granian_app",
    "granian_bare_app",
    "mock_app",
    "populate",
    "redis_population",
    "serve",
    "serve_granian",
    "unsteer",
]

#: Live jobs in the store, spread over every key of the catalogue.
JOBS = 10_000
#: The key whose jobs are polled.
POLLED_KEY = API_KEYS[0]
#: Jobs arrived evenly over this many simulated seconds before the benchmark starts.
WINDOW_S = 12.0
#: Simulated seconds per wall second: the population ages ~2 s during a 40 s run.
SPEED = 0.05
SEED = 1


def _non_matching(i: int) -> dict[str, str]:
    match i % 4:
        case 0:  # a wrong method
            return {"method": "DELETE", "path": "/nothing/*"}
        case 1:  # a path glob that fails
            return {"path": f"/nothing/{i}/*"}
        case 2:  # another API key
            return {"key": f"bk_other_{i}"}
        case _:  # a fault aimed at another client's polls: method and path match, not the key
            return {"method": "GET", "path": "/agent/job/*", "key": f"bk_other_{i}"}


def _non_matching_rules(count: int) -> tuple[Rule, ...]:
    """``count`` rules in four shapes (cheapest to dearest to reject), none matching a poll."""
    respond = {"respond": {"status": 503, "body": {"error": "x", "message": "never fires"}}}
    return tuple(
        parse_rule({"match": _non_matching(i), "action": respond}, where=f"rule {i}")
        for i in range(count)
    )


#: The ``rules`` server's rules: 100, and not one matches a status poll.
NON_MATCHING_RULES = _non_matching_rules(100)


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


@dataclasses.dataclass(frozen=True)
class Population:
    """A store pre-filled as described above, its clock and table, and facts about it."""

    clock: ScaledClock
    store: JobStore
    table: TimingTable
    facts: dict[str, Any]


def populate(out: Path, store: JobStore | None = None) -> Population:
    """Fill a store (default: a new memory store) with :data:`JOBS` jobs; write the polled
    ids and a typical body to ``out``."""
    now = time.time()
    clock = ScaledClock(SPEED, start=now)
    store = store or MemoryStore()
    table = load_timing(None)
    # Submissions in the past: a Simulator whose virtual clock walks from
    # now - WINDOW_S to now, one step per job.
    arrivals = VirtualClock(start=now - WINDOW_S)
    filler = Simulator(table, clock=arrivals, rng=random.Random(SEED), store=store)
    jobs = asyncio.run(_prefill(filler, arrivals))

    # The bodies as the server will answer them, on its clock.
    server_sim = Simulator(table, clock=clock, rng=random.Random(SEED), store=store)
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
    return Population(clock, store, table, facts)


def mock_app(
    population: Population,
    *,
    rules: tuple[Rule, ...] = (),
    steering: bool = True,
    rule_check: bool = True,
    metrics: bool = True,
) -> tuple[Starlette, dict[str, Any]]:
    """mockbankr serving ``population``'s store.

    ``rules`` are installed at start; ``steering=False`` takes the steering middleware
    (rules, directives, journal) out of the app; ``rule_check=False`` keeps it but
    switches off its search for rules and directives, so it only journals;
    ``metrics=False`` serves it as ``--no-metrics`` does.
    """
    app = create_app(
        Settings(seed=SEED, rules=rules, metrics=metrics),
        clock=population.clock,
        rng=random.Random(SEED),
        store=population.store,
        table=population.table,
    )
    if not steering:
        unsteer(app)
    elif not rule_check:
        _swap_steering(app, _JournalOnly)
    return app, {
        "rules": len(app.state.rules),
        "steering": steering,
        "rule_check": rule_check,
        "metrics": metrics,
    }


class _JournalOnly(SteeringMiddleware):
    """The steering middleware that never looks for a rule or a directive: every request
    takes the hot path and is journaled. What the look costs is measured against it."""

    check_steering = False


def _swap_steering(app: Starlette, cls: type[SteeringMiddleware]) -> None:
    """Serve ``app`` with ``cls`` in place of :class:`SteeringMiddleware` (before its first
    request: Starlette builds the stack from ``app.user_middleware`` then)."""
    if not any(_is_steering(m.cls) for m in app.user_middleware):
        raise SystemExit("swap: the app has no SteeringMiddleware")
    app.user_middleware = [
        Middleware(cls, *m.args, **m.kwargs) if _is_steering(m.cls) else m
        for m in app.user_middleware
    ]
    app.middleware_stack = None


def _is_steering(cls: object) -> bool:
    return cls is SteeringMiddleware


def unsteer(app: Starlette) -> None:
    """Take :class:`SteeringMiddleware` out of ``app`` (before it serves its first request).

    Starlette builds ``app.middleware_stack`` from ``app.user_middleware`` on the first
    request; resetting the stack makes it rebuild without the middleware.
    """
    kept = [m for m in app.user_middleware if not _is_steering(m.cls)]
    if len(kept) == len(app.user_middleware):
        raise SystemExit("unsteer: the app has no SteeringMiddleware to take out")
    app.user_middleware = kept
    app.middleware_stack = None


def prompt_app(out: Path) -> tuple[Starlette, dict[str, Any]]:
    """mockbankr on an empty store and wall time, for prompts of both flavours."""
    app = create_app(
        Settings(seed=SEED), clock=RealClock(), rng=random.Random(SEED), store=MemoryStore()
    )
    return app, {"payment": app.state.settings.payment.network}


def bare_app(out: Path) -> tuple[Starlette, dict[str, Any]]:
    """The baseline: one route answering a pre-encoded body read from ``out``."""
    body = (out / "body.json").read_bytes()

    async def job(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/agent/job/{job_id}", job, methods=["GET"])]), {
        "body_bytes": len(body)
    }


async def _serve_until_stopped(
    servers: list[tuple[uvicorn.Server, socket.socket]], facts: dict[str, Any]
) -> None:
    serving = [asyncio.ensure_future(server.serve(sockets=[sock])) for server, sock in servers]
    while not all(server.started for server, _ in servers):
        if any(task.done() for task in serving):
            await asyncio.gather(*serving)
            raise SystemExit("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    print(json.dumps(facts), flush=True)
    await asyncio.gather(*serving)


def serve(apps: list[tuple[str, Starlette, dict[str, Any]]], facts: dict[str, Any]) -> None:
    """Serve each app on its own free 127.0.0.1 port until SIGTERM; announce them on stdout.

    ``apps`` are ``(kind, app, facts)``. The announcement is one JSON line: ``facts``,
    the first app's facts and its ``port``, and ``servers``, each app's kind, port
    and facts. Several apps share one process and one event loop, one
    ``uvicorn.Server`` each, so that they can be compared without the differences
    between two processes (memory layout, hash seed). The configuration is that of
    ``mockbankr serve``, made explicit: uvloop, httptools, no access log, log level
    warning.
    """
    servers = []
    announced = []
    for kind, app, app_facts in apps:
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
        servers.append((uvicorn.Server(config), sock))
        announced.append({"kind": kind, "port": sock.getsockname()[1], **app_facts})
    facts = {**facts, **announced[0], "servers": announced, "pid": os.getpid()}
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(_serve_until_stopped(servers, facts))


#: Server kinds that share one pre-filled store (``poll+unsteered+...`` serves several).
MOCK_KINDS: dict[str, dict[str, Any]] = {
    "poll": {},
    "unsteered": {"steering": False},
    "journaled": {"rule_check": False},
    "rules": {"rules": NON_MATCHING_RULES},
    "unmetered": {"metrics": False},
}
#: Server kinds of their own.
OTHER_KINDS: dict[str, Callable[[Path], tuple[Starlette, dict[str, Any]]]] = {
    "bare": bare_app,
    "prompt": prompt_app,
}


def redis_population(out: Path) -> Population:
    """The population in the Redis of ``MOCKBANKR_BENCH_REDIS`` (emptied first)."""
    from mockbankr.redis_store import RedisStore

    store = RedisStore(os.environ["MOCKBANKR_BENCH_REDIS"])
    asyncio.run(store.clear())
    return populate(out, store)


def granian_app() -> Starlette:
    """The ``poll`` app of a granian worker (its factory): the population is built here,
    in the worker, and its facts written to ``DIR/granian.json``."""
    out = Path(os.environ["MOCKBANKR_BENCH_DIR"])
    population = populate(out)
    app, facts = mock_app(population)
    (out / "granian.json").write_text(json.dumps({**population.facts, **facts}))
    return app


def granian_bare_app() -> Starlette:
    """The ``bare`` app of a granian worker (its factory), on ``DIR/body.json``; its facts
    written to ``DIR/granian-bare.json``."""
    out = Path(os.environ["MOCKBANKR_BENCH_DIR"])
    app, facts = bare_app(out)
    (out / "granian-bare.json").write_text(json.dumps(facts))
    return app


#: Server kinds served by granian: the worker's app factory, by kind.
GRANIAN_KINDS = {"granian": granian_app, "granian-bare": granian_bare_app}


def serve_granian(kind: str, out: Path) -> None:
    """Serve the app of :data:`GRANIAN_KINDS` ``kind`` with granian (one worker) until
    SIGTERM; announce it once the worker answers (from a thread: granian runs in the main
    thread)."""
    import threading
    import urllib.error
    import urllib.request

    from granian.server import Server

    from mockbankr.serving import granian_options

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ["MOCKBANKR_BENCH_DIR"] = str(out)
    facts_file = out / f"{kind}.json"
    facts_file.unlink(missing_ok=True)

    def announce() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                    pass
            except urllib.error.HTTPError:
                pass  # an answer (the bare app has no "/"): the worker serves
            except OSError:
                time.sleep(0.05)
                continue
            if facts_file.exists():
                facts = json.loads(facts_file.read_text())
                print(json.dumps({**facts, "port": port, "pid": os.getpid()}), flush=True)
                return
            time.sleep(0.05)

    threading.Thread(target=announce, daemon=True).start()
    Server(
        f"bench._serve:{GRANIAN_KINDS[kind].__name__}",
        address="127.0.0.1",
        port=port,
        workers=1,
        factory=True,
        **granian_options(),
    ).serve()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._serve")
    parser.add_argument(
        "kind",
        help=f"one of {', '.join([*MOCK_KINDS, *OTHER_KINDS, *GRANIAN_KINDS])}, or several of"
        f" {', '.join(MOCK_KINDS)} joined by '+' (one process, one store)",
    )
    parser.add_argument("--dir", type=Path, required=True, help="where ids and body.json live")
    args = parser.parse_args()
    kinds = args.kind.split("+")
    if len(kinds) == 1 and kinds[0] in GRANIAN_KINDS:
        serve_granian(kinds[0], args.dir)
        return
    if kinds == ["redis"]:
        population = redis_population(args.dir)
        serve([("redis", *mock_app(population))], population.facts)
        return
    if len(kinds) == 1 and kinds[0] in OTHER_KINDS:
        app, facts = OTHER_KINDS[kinds[0]](args.dir)
        serve([(kinds[0], app, facts)], {})
        return
    unknown = [kind for kind in kinds if kind not in MOCK_KINDS]
    if unknown:
        parser.error(f"unknown kind {unknown[0]!r} (see --help)")
    population = populate(args.dir)
    apps = [(kind, *mock_app(population, **MOCK_KINDS[kind])) for kind in kinds]
    serve(apps, population.facts)


if __name__ == "__main__":
    main()
