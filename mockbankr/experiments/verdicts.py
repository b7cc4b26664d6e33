"""The verdicts of every client check (:mod:`mockbankr.grading`), summed up per policy.

Every agent of a run is a client of its own (its key or wallet); a policy's entry in
``results.json`` counts, per check, how many agents passed, failed or never exercised it,
how many offending requests there were and what they wasted, with the evidence of the
first agent that failed each check.

Example::

    grade_run(records, price_usdc="0.10")["checks"]["no-double-pay"]["fail"]
"""

from __future__ import annotations

from typing import Any

from mockbankr.experiments.records import Records
from mockbankr.grading import grade
from mockbankr.money import atomic_to_usdc
from mockbankr.verdicts import CHECKS, Thresholds

__all__ = ["grade_run"]


def grade_run(records: Records, *, price_usdc: str = "0.10") -> dict[str, Any]:
    """The run's verdicts with the documented thresholds (the seed's values), as JSON."""
    dropped = (
        0
        if records.coverage.get("covered", True)
        else (int(records.coverage.get("sent", 0)) - int(records.coverage.get("recorded", 0)))
    )
    report = grade(
        records.entries,
        Thresholds(price_usdc=price_usdc),
        now=records.t0 + records.end,
        dropped=max(0, dropped),
    )
    checks: dict[str, dict[str, Any]] = {}
    examples: dict[str, Any] = {}
    for check in CHECKS:
        tally = {"pass": 0, "fail": 0, "not-exercised": 0}
        count = 0
        wasted = 0
        for client in report.clients:
            verdict = client.verdicts[check]
            tally[verdict.outcome] += 1
            if verdict.failed:
                count += verdict.count
                wasted += verdict.wasted_atomic or 0
                if check not in examples:
                    examples[check] = {"owner": client.label, **verdict.to_json()}
        checks[check] = {**tally, "count": count, "usdc_wasted": atomic_to_usdc(wasted)}
    return {
        "failed_checks": [check for check in CHECKS if checks[check]["fail"]],
        "clients": len(report.clients),
        "checks": checks,
        "examples": examples,
        "window": report.window.to_json(),
        "thresholds": report.thresholds.to_json(),
    }
