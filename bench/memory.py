"""Resident memory per live job: 1,000,000 jobs in a MemoryStore, in a fresh process.

Baseline: the same process with the app built on an empty store, measured just
before the jobs are added. Figure: (VmRSS full - VmRSS empty) / jobs. Target:
at most 512 bytes per job (DESIGN.md: "a million live jobs fit in memory").
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from bench.figures import BenchError, Figure, at_most, info

__all__ = ["JOBS", "TARGET_BYTES_PER_JOB", "run"]

logger = logging.getLogger("bench")

JOBS = 1_000_000
TARGET_BYTES_PER_JOB = 512
#: The child must finish within this many seconds (about 25 s on a 2-core laptop).
TIMEOUT_S = 150


def run() -> list[Figure]:
    logger.info("memory: submitting %s jobs in a fresh process", f"{JOBS:,}")
    child = subprocess.run(
        [sys.executable, "-m", "bench._memory_child", "--jobs", str(JOBS)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    if child.returncode != 0:
        raise BenchError(f"memory child failed ({child.returncode}):\n{child.stderr}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    if result["jobs"] != JOBS:
        raise BenchError(f"the store holds {result['jobs']} jobs, expected {JOBS}")
    per_job = (result["rss_full"] - result["rss_empty"]) / JOBS
    return [
        at_most("RSS per live job", per_job, "B/job", TARGET_BYTES_PER_JOB),
        info("RSS, empty store (app built)", result["rss_empty"] / 2**20, "MiB"),
        info(f"RSS, {JOBS:,} jobs", result["rss_full"] / 2**20, "MiB"),
        info(f"time to submit {JOBS:,} jobs", result["seconds"], "s"),
    ]
