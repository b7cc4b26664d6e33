"""The files of a run: ``results.json``, ``jobs.csv`` and ``report.html`` in one folder.

Example::

    write_outputs(Path("out"), results, rows, experiment_text)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

__all__ = ["JOB_COLUMNS", "WALL_FIELDS", "write_outputs"]

#: The columns of ``jobs.csv``, one row per job per policy.
JOB_COLUMNS = (
    "policy",
    "job_id",
    "agent",
    "task",
    "task_at_s",
    "category",
    "created_s",
    "started_s",
    "finished_s",
    "scheduled_outcome",
    "cancelled_s",
    "polls",
    "seen_end_s",
    "fate",
    "spend",
)

#: Keys of ``results.json`` that measure wall time (they differ between two runs).
WALL_FIELDS = frozenset({"wall_s"})


def write_outputs(
    out: Path,
    results: dict[str, Any],
    rows: dict[str, list[dict[str, Any]]],
    experiment_text: str,
    *,
    report: bool = True,
) -> list[Path]:
    """Write the run's files into ``out`` (created if missing); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "jobs.csv"]
    written[0].write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", "utf-8")
    with written[1].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=JOB_COLUMNS)
        writer.writeheader()
        for policy, policy_rows in rows.items():
            for row in policy_rows:
                writer.writerow({"policy": policy, **row})
    if report:
        from mockbankr.experiments.report import render_report

        path = out / "report.html"
        path.write_text(render_report(results, experiment_text), "utf-8")
        written.append(path)
    return written
