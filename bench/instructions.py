"""The rules benchmark again, counted in CPU instructions: repeatable on a noisy machine.

On a shared VM the speed of a core drifts by tens of percent from one second to the
next, as much as the few percent :mod:`bench.rules` measures. Instructions do not
drift: callgrind counts the same total for the same work whatever else the machine
does. So this benchmark serves the same apps (:mod:`bench._serve`,
``journaled+poll+rules+unsteered+unmetered``, one process, one store of 10,000 jobs) under
``valgrind --tool=callgrind`` with instrumentation off, and for each app in turn:

* sends :data:`POLLS` status polls uncounted (``GET /agent/job/{id}`` with the polled
  key, one keep-alive connection, the same ids for every app), so that every cache the
  app keeps per job is as warm as it will be,
* switches instrumentation on, sends the same polls again, dumps the counters and
  switches instrumentation off,

for :data:`ROUNDS` rounds. The count is everything the server process executed in
that window: uvicorn, httptools, Starlette and mockbankr. A cost is
``1 - instructions per poll of the baseline / of the app`` (medians over the rounds):
the throughput lost if time follows instructions. Targets as in :mod:`bench.rules`
(issue 5): an empty rule list under 5%, 100 non-matching rules under 25%, against the
app that journals but never looks for a rule (the request journal is always on).
Beside them, issue 17's: what metrics (on by default) cost a poll, against the app as
``--no-metrics`` serves it (target: under 5%, as :mod:`bench.metrics`).
"""

from __future__ import annotations

import http.client
import logging
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._serve import POLLED_KEY
from bench.figures import BenchError, Figure, at_most, info
from bench.metrics import TARGET_COST
from bench.poll import _server
from bench.rules import TARGET_EMPTY, TARGET_HUNDRED

__all__ = ["POLLS", "ROUNDS", "run"]

logger = logging.getLogger("bench")

ROUNDS = 3
POLLS = 400
#: The server starts under valgrind (imports, 10,000 jobs) in about 40 s.
START_TIMEOUT_S = 300.0
#: Each server kind of the one process, and its role here.
ROLES = {
    "journaled": "baseline",
    "poll": "empty rule list",
    "rules": "100 rules",
    "unsteered": "no steering layer",
    "unmetered": "metrics off",
}


def _polls(ids: list[str], port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for job_id in ids:
            connection.request("GET", f"/agent/job/{job_id}", headers={"X-API-Key": POLLED_KEY})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise BenchError(
                    f"instructions: GET /agent/job/{job_id} on :{port} answered {response.status}"
                )
    finally:
        connection.close()


class _Callgrind:
    """``callgrind_control`` for one process whose dumps go to ``out``."""

    def __init__(self, control: str, pid: int, out: Path) -> None:
        self._control = control
        self._pid = pid
        self._out = out

    def _call(self, *args: str) -> None:
        try:
            subprocess.run(
                [self._control, *args, str(self._pid)],
                capture_output=True,
                check=True,
                timeout=60,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise BenchError(
                f"instructions: callgrind_control {' '.join(args)} failed: {exc}"
            ) from exc

    def count(self, work: Callable[[], None]) -> int:
        """Instructions the process executes while ``work()`` runs."""
        self._call("--dump=before")  # whatever ran before, into a dump of its own
        dumps = set(self._out.glob("callgrind.*"))
        self._call("--instr=on")
        try:
            work()
            self._call("--dump=counted")
        finally:
            self._call("--instr=off")
        (dump,) = set(self._out.glob("callgrind.*")) - dumps
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
        raise BenchError(f"instructions: no totals in {dump}")


def run() -> list[Figure]:
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if valgrind is None or control is None:
        raise BenchError("valgrind is not installed: apt-get install -y valgrind")
    started = time.perf_counter()
    per_poll: dict[str, list[float]] = {role: [] for role in ROLES.values()}
    with tempfile.TemporaryDirectory(prefix="mockbankr-bench-") as tmp:
        workdir = Path(tmp)
        wrapper = [
            valgrind,
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={workdir}/callgrind.%p",
        ]
        with _server(
            "+".join(ROLES),
            workdir,
            None,
            wrapper=wrapper,
            start_timeout=START_TIMEOUT_S,
            env={"PYTHONHASHSEED": "0"},
        ) as process:
            logger.info(
                "instructions: server up under callgrind in %.0f s", time.perf_counter() - started
            )
            callgrind = _Callgrind(control, process.pid, workdir)
            ids = (workdir / "ids").read_text(encoding="ascii").split()
            polled = random.Random(1).choices(ids, k=POLLS)
            servers: list[dict[str, Any]] = process.facts["servers"]  # kind and port of each
            for round_ in range(ROUNDS):
                shift = round_ % len(servers)
                for server in servers[shift:] + servers[:shift]:
                    port = server["port"]
                    _polls(polled, port)
                    total = callgrind.count(lambda port=port: _polls(polled, port))
                    per_poll[ROLES[server["kind"]]].append(total / POLLS)
                logger.info(
                    "instructions: round %d, per poll: %s",
                    round_ + 1,
                    ", ".join(f"{role} {v[-1]:,.0f}" for role, v in per_poll.items()),
                )
    logger.info("instructions: done in %.0f s", time.perf_counter() - started)
    return _figures({role: statistics.median(v) for role, v in per_poll.items()}, per_poll)


def _figures(ir: dict[str, float], runs: dict[str, list[float]]) -> list[Figure]:
    def cost(role: str, base: str = "baseline") -> float:
        return 100 * (1 - ir[base] / ir[role])

    spread = max((max(v) - min(v)) / statistics.median(v) for v in runs.values())
    # The rounds agree to within ``spread``: a check on the method, not a noise floor.
    return [
        at_most(
            "cost of an empty rule list, in instructions",
            cost("empty rule list"),
            "%",
            100 * TARGET_EMPTY,
        ),
        at_most(
            "cost of 100 non-matching rules, in instructions",
            cost("100 rules"),
            "%",
            100 * TARGET_HUNDRED,
        ),
        at_most(
            "cost of metrics on a status poll, in instructions",
            cost("empty rule list", "metrics off"),
            "%",
            100 * TARGET_COST,
        ),
        info(
            "cost of the journal alone, against no steering layer",
            cost("baseline", "no steering layer"),
            "%",
        ),
        info(
            "cost of the whole layer (journal, empty rule list), against none",
            cost("empty rule list", "no steering layer"),
            "%",
        ),
        *(info(f"instructions per poll, {role}", value, "Ir") for role, value in ir.items()),
        info("largest spread of one app's rounds, (max - min) / median", 100 * spread, "%"),
    ]
