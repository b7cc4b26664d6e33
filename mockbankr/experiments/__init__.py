"""Experiments: what a polling, timeout and retry policy costs, on identical work.

``mockbankr experiment run FILE.toml`` runs every policy of the file on its own fresh
simulator (same seed, same arrivals), in-process on virtual time or live against a
server, and writes ``results.json``, ``jobs.csv`` and ``report.html``.

Example::

    spec = load_experiment(Path("fixtures/experiments/polling.toml"))
    results, rows = asyncio.run(run_experiment(spec))  # mockbankr.experiments.runner
"""

from __future__ import annotations

from mockbankr.experiments.spec import ExperimentSpec, load_experiment, parse_experiment

__all__ = ["ExperimentSpec", "load_experiment", "parse_experiment"]
