"""What metrics cost a status poll: mockbankr with metrics on, against ``--no-metrics``.

One uvicorn process (:mod:`bench._serve`, ``unmetered+unmetered+poll``) serves three apps
on three ports over one store of 10,000 live jobs, pinned to one core; wrk polls them
from another core exactly as in :mod:`bench.poll`:

* ``metrics off`` and ``metrics off again``: ``Settings(metrics=False)``, what
  ``mockbankr serve --no-metrics`` runs: no request counters (the second shows the noise);
* ``metrics on``: the app as it ships, counting each poll by route and status
  (:class:`~mockbankr.counters.MemoryCounters`) in the steering layer's ``finally``.

A scrape of ``/__mock/metrics`` costs nothing per request (it reads the records when
asked); it is timed once here on the 10,000 jobs, for information.

After a warm-up of each, 1 s runs go round the apps (the order rotates each round) for
:data:`ROUNDS` rounds. The cost is ``1 - median(on / mean(off, off again))`` over the
rounds, throughput being requests per CPU-second of the server process. Target: at most
:data:`TARGET_COST` (5%).
"""

from __future__ import annotations

import logging
import statistics
import time
import urllib.error
import urllib.request

from bench.figures import BenchError, Figure, at_most, info
from bench.poll import (
    BUSY_WARNING,
    _check,
    _Run,
    _Server,
    joined_servers,
    rotated_rounds,
    wrk_binary,
)

__all__ = ["ROLES", "ROUNDS", "TARGET_COST", "run"]

logger = logging.getLogger("bench")

TARGET_COST = 0.05
ROUNDS = 20
DURATION_S = 1
WARMUP_S = 2
#: Each app of the one server process: its role here and its kind in bench._serve.
ROLES = {"metrics off": "unmetered", "metrics off again": "unmetered", "metrics on": "poll"}


def _scrape(server: _Server) -> tuple[int, float]:
    """``/__mock/metrics`` of ``server``: its status and the wall seconds it took."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(server.url + "/__mock/metrics", timeout=10) as response:
            response.read()
            status: int = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        raise BenchError(f"metrics: {server.kind}: GET /__mock/metrics failed: {exc}") from exc
    return status, time.perf_counter() - started


def run() -> list[Figure]:
    wrk = wrk_binary()
    started = time.perf_counter()
    with joined_servers(ROLES) as (workdir, servers):
        for server in servers:
            _check(server, workdir)
            status, _ = _scrape(server)
            if status != (200 if ROLES[server.kind] == "poll" else 404):
                raise BenchError(f"metrics: the {server.kind} app answered {status} to a scrape")
        runs = rotated_rounds(
            "metrics",
            wrk,
            servers,
            workdir,
            rounds=ROUNDS,
            warmup_s=WARMUP_S,
            duration_s=DURATION_S,
        )
        _, scrape_s = _scrape(servers[-1])
    logger.info("metrics: done in %.0f s", time.perf_counter() - started)
    return _figures(runs, scrape_s)


def _figures(runs: dict[str, list[_Run]], scrape_s: float) -> list[Figure]:
    busy = min(r.busy for role_runs in runs.values() for r in role_runs)
    if busy < BUSY_WARNING:
        logger.warning(
            "metrics: the server was on its core only %.0f%% of a run: the req/s figures are"
            " noise; the per-CPU-second ones still hold",
            100 * busy,
        )
    off, again, on = (runs[role] for role in ROLES)
    cost = 1 - statistics.median(
        o.rps_cpu / ((a.rps_cpu + b.rps_cpu) / 2) for o, a, b in zip(on, off, again, strict=True)
    )
    noise = 1 - statistics.median(b.rps_cpu / a.rps_cpu for a, b in zip(off, again, strict=True))
    return [
        at_most("cost of metrics on a status poll, per server CPU-second", 100 * cost, "%", 5),
        info("noise: 'cost' of metrics off against itself", 100 * noise, "%"),
        *(
            info(f"{role}, median", statistics.median(r.rps_cpu for r in runs[role]), "req/CPU-s")
            for role in ROLES
        ),
        info("one scrape of /__mock/metrics, 10,000 jobs", 1000 * scrape_s, "ms"),
        info("server on its core, lowest of all runs", 100 * busy, "%"),
    ]
