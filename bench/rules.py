"""What the rule check costs a status poll: no rules, and 100 rules that never match.

One uvicorn process (:mod:`bench._serve`, ``journaled+journaled+poll+rules+unsteered``)
serves five apps on five ports over one store of 10,000 live jobs, pinned to one core;
wrk polls them from another core exactly as in :mod:`bench.poll`:

* ``baseline`` and ``baseline again``: the app whose steering middleware never looks
  for a rule or a directive but journals every request (the request journal is always
  on, a feature of its own), twice: the second shows the noise;
* ``empty rule list``: the app as it ships (the middleware's fast path);
* ``100 rules``: the app with :data:`bench._serve.NON_MATCHING_RULES`, 100 rules that no
  poll matches, so every poll is checked against all of them (by the rule index and
  the rules' path prefixes, see :meth:`~mockbankr.rules.RuleSet.could_match`);
* ``no steering layer``: the app with :class:`~mockbankr.steering.SteeringMiddleware`
  taken out (no rules, no directives, no journal), for the cost of the whole layer.

After a warm-up of each, 1 s runs go round the apps (the order rotates each round) for
:data:`ROUNDS` rounds. A cost is ``1 - median(throughput / baseline)`` over the rounds,
throughput being requests per CPU-second of the server process (see bench/README.md,
poll), the baseline the mean of the two baseline apps in that round. The targets of
issue 5 (:data:`TARGET_EMPTY`, :data:`TARGET_HUNDRED`) are judged by
:mod:`bench.instructions` on the same apps, since on a shared VM these timings scatter
by more than the targets; the figures here are reported with their noise. Beside them:
what the journal and the whole steering layer cost against no layer at all.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
import urllib.request

import httpx

from bench._live import cpu_seconds, live_server
from bench._serve import NON_MATCHING_RULES
from bench.figures import BenchError, Figure, at_least, info
from bench.poll import (
    BUSY_WARNING,
    _check,
    _Run,
    _Server,
    joined_servers,
    rotated_rounds,
    wrk_binary,
)

__all__ = [
    "ADD_BLOCK",
    "ADD_RULES",
    "ROLES",
    "ROUNDS",
    "TARGET_ADD_RATIO",
    "TARGET_EMPTY",
    "TARGET_HUNDRED",
    "run",
    "run_adding",
]

logger = logging.getLogger("bench")

TARGET_EMPTY = 0.05
TARGET_HUNDRED = 0.25
ROUNDS = 40
DURATION_S = 1
WARMUP_S = 2
#: Each app of the one server process: its role here and its kind in bench._serve.
ROLES = {
    "baseline": "journaled",
    "baseline again": "journaled",
    "empty rule list": "poll",
    "100 rules": "rules",
    "no steering layer": "unsteered",
}


def _get(server: _Server, path: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=5) as response:
            data: dict[str, object] = json.loads(response.read())
    except OSError as exc:
        raise BenchError(f"rules: {server.kind}: GET {path} failed: {exc}") from exc
    return data


def _verify(server: _Server, expected_rules: int, journaled: bool) -> None:
    """The app is the one we think: its rule count, and whether it journals polls."""
    rules = _get(server, "/__mock/rules")["rules"]
    entries = _get(server, "/__mock/journal?limit=1")["entries"]
    if not isinstance(rules, list) or not isinstance(entries, list):
        raise BenchError(f"rules: {server.kind}: unexpected /__mock answers")
    if len(rules) != expected_rules or bool(entries) != journaled:
        raise BenchError(
            f"rules: the {server.kind} app has {len(rules)} rules and a journal of"
            f" {len(entries)}; expected {expected_rules} rules and a journal that"
            f" {'records' if journaled else 'does not record'} polls"
        )


def run() -> list[Figure]:
    wrk = wrk_binary()
    started = time.perf_counter()
    with joined_servers(ROLES) as (workdir, servers):
        logger.info(
            "rules: %d apps up in one process: %s", len(servers), [s.facts for s in servers]
        )
        for server in servers:
            _check(server, workdir)
            kind = ROLES[server.kind]
            _verify(server, len(NON_MATCHING_RULES) if kind == "rules" else 0, kind != "unsteered")
        runs = rotated_rounds(
            "rules",
            wrk,
            servers,
            workdir,
            rounds=ROUNDS,
            warmup_s=WARMUP_S,
            duration_s=DURATION_S,
        )
    logger.info("rules: done in %.0f s", time.perf_counter() - started)
    return _figures(runs)


def _rate(run: _Run, wall: bool) -> float:
    return run.rps if wall else run.rps_cpu


def _ratios(runs: dict[str, list[_Run]], role: str, *, wall: bool = False) -> list[float]:
    """Per round: the role's throughput / the mean of the two baseline apps' throughputs."""
    return [
        _rate(r, wall) / ((_rate(b, wall) + _rate(b2, wall)) / 2)
        for r, b, b2 in zip(runs[role], runs["baseline"], runs["baseline again"], strict=True)
    ]


def _cost(runs: dict[str, list[_Run]], role: str, *, wall: bool = False) -> float:
    """1 - the median over the rounds of the throughput ratio to the baseline."""
    return 1 - statistics.median(_ratios(runs, role, wall=wall))


def _against_no_layer(runs: dict[str, list[_Run]], role: str) -> float:
    """1 - the median over the rounds of the role's throughput / the app without the layer."""
    return 1 - statistics.median(
        r.rps_cpu / none.rps_cpu
        for r, none in zip(runs[role], runs["no steering layer"], strict=True)
    )


def _noise(runs: dict[str, list[_Run]]) -> tuple[float, float]:
    """The baseline against itself: 1 - median ratio, and half the ratios' interquartile range."""
    ratios = [
        again.rps_cpu / first.rps_cpu
        for first, again in zip(runs["baseline"], runs["baseline again"], strict=True)
    ]
    low, _, high = statistics.quantiles(ratios, n=4)
    return 1 - statistics.median(ratios), (high - low) / 2


def _figures(runs: dict[str, list[_Run]]) -> list[Figure]:
    busy = min(r.busy for role_runs in runs.values() for r in role_runs)
    if busy < BUSY_WARNING:
        logger.warning(
            "rules: the server was on its core only %.0f%% of a run: the req/s figures are"
            " noise; the per-CPU-second ones still hold",
            100 * busy,
        )
    floor, spread = _noise(runs)
    # No verdict here: on a shared VM these move by more than the targets (see the noise
    # rows). bench.instructions judges the same costs, repeatably.
    percents = {
        "cost of an empty rule list, per server CPU-second": _cost(runs, "empty rule list"),
        "cost of 100 non-matching rules, per server CPU-second": _cost(runs, "100 rules"),
        "noise: 'cost' of the baseline against itself": floor,
        "noise: half the IQR of one round's ratio, A/A": spread,
        "cost of an empty rule list, per wall second": _cost(runs, "empty rule list", wall=True),
        "cost of 100 rules, per wall second": _cost(runs, "100 rules", wall=True),
        "cost of the journal alone, against no steering layer": _against_no_layer(runs, "baseline"),
        "cost of the whole layer (journal, empty rule list), against none": _against_no_layer(
            runs, "empty rule list"
        ),
    }
    return [
        *(info(name, 100 * value, "%") for name, value in percents.items()),
        *(
            info(f"{role}, median", statistics.median(r.rps_cpu for r in runs[role]), "req/CPU-s")
            for role in ROLES
        ),
        info("server on its core, lowest of all runs", 100 * busy, "%"),
    ]


#: Rules added through the control plane by :func:`run_adding`, in blocks of :data:`ADD_BLOCK`.
ADD_RULES = 5000
ADD_BLOCK = 500
#: The last block's rate against the first's: an O(1) add keeps it near 1.
TARGET_ADD_RATIO = 0.5


def run_adding() -> list[Figure]:
    """Rules added per server CPU-second over HTTP to a live ``mockbankr serve``, to 5,000.

    Each rule has a path glob of its own (``/nowhere/{i}/*``), as a test suite's rules
    would. The figure: the rate of the last 500 (rules 4,501-5,000) against the first
    500 added to the same server, both per CPU-second of the server process (wall time
    on a shared machine is mostly the neighbours). Adding was O(n) per rule (41 s for
    5,000); now the rate holds.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    rates: list[float] = []
    wall_rates: list[float] = []
    with (
        live_server("--speed", "20", "--seed", "1") as server,
        httpx.Client(base_url=server.url, timeout=30.0) as http,
    ):
        started = time.perf_counter()
        for block in range(ADD_RULES // ADD_BLOCK):
            block_started = time.perf_counter()
            cpu_started = cpu_seconds(server.pid)
            for i in range(block * ADD_BLOCK, (block + 1) * ADD_BLOCK):
                rule = {"match": {"path": f"/nowhere/{i}/*"}, "action": {"drop": {}}}
                response = http.post("/__mock/rules", json=rule)
                if response.status_code != 201:
                    raise BenchError(f"rules-add: rule {i}: {response.status_code} {response.text}")
            rates.append(ADD_BLOCK / (cpu_seconds(server.pid) - cpu_started))
            wall_rates.append(ADD_BLOCK / (time.perf_counter() - block_started))
        total = time.perf_counter() - started
        listed = http.get("/__mock/rules").json()["rules"]
        if len(listed) != ADD_RULES:
            raise BenchError(f"rules-add: the server lists {len(listed)} rules, not {ADD_RULES}")
    logger.info(
        "rules-add: rules per server CPU-second, per block of %d: %s",
        ADD_BLOCK,
        [round(r) for r in rates],
    )
    return [
        at_least(
            f"rules added per server CPU-second, rules {ADD_RULES - ADD_BLOCK + 1:,}-{ADD_RULES:,}"
            f" / rules 1-{ADD_BLOCK}",
            rates[-1] / rates[0],
            "x",
            TARGET_ADD_RATIO,
        ),
        info(f"rules added, first {ADD_BLOCK}", rates[0], "rules/CPU-s"),
        info(f"rules added, last {ADD_BLOCK} of {ADD_RULES:,}", rates[-1], "rules/CPU-s"),
        info(f"rules added per wall second, last {ADD_BLOCK}", wall_rates[-1], "rules/s"),
        info(f"time to add {ADD_RULES:,} rules", total, "s"),
    ]
