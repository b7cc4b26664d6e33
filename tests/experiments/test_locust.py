"""The shipped locustfile, headless and bounded, against a live server; then the report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from mockbankr.cli import main
from tests.experiments.conftest import serve

pytestmark = pytest.mark.live

USERS = 20
EXPERIMENT = """
[experiment]
name = "locust"
seed = 5

[fleet]
agents = 20
mix = { price = 1.0, swap = 1.0 }

[[policies]]
name = "fast-polling"
kind = "reference"
interval_s = 1.0
"""


def _locust_stats(summary: str) -> dict[str, int]:
    """Request counts by name from the final table Locust prints (its last rows win)."""
    counts: dict[str, int] = {}
    for line in summary.splitlines():
        found = re.match(r"^(?:GET|POST)?\s+(\S+)\s+(\d+)\s+\d+\(", line)
        if found:
            counts[found.group(1)] = int(found.group(2))
    return counts


def test_a_headless_locust_run_is_what_the_journal_saw(tmp_path: Path) -> None:
    experiment = tmp_path / "locust.toml"
    experiment.write_text(EXPERIMENT)
    locustfile = subprocess.run(
        [sys.executable, "-m", "mockbankr.experiments.locustfile"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with serve("--speed", "20", "--journal-size", "500000") as base_url:
        env = {**os.environ, "MOCKBANKR_EXPERIMENT": str(experiment)}
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "locust"),
                "-f",
                locustfile,
                "--headless",
                "-u",
                str(USERS),
                "-r",
                str(USERS),
                "-t",
                "10s",
                "--host",
                base_url,
                "--only-summary",
                "--stop-timeout",
                "0",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        entries = httpx.get(f"{base_url}/__mock/journal").json()["entries"]
        stats = _locust_stats(run.stdout + run.stderr)
        prompts = [e for e in entries if e["path"] == "/agent/prompt"]
        polls = [e for e in entries if e["method"] == "GET" and e["path"].startswith("/agent/job/")]
        # Locust stops its users mid-request: at most one request per user is unreported.
        assert stats["Aggregated"] <= len(entries) <= stats["Aggregated"] + USERS
        assert stats["/agent/prompt"] <= len(prompts) <= stats["/agent/prompt"] + USERS
        assert stats["/agent/job/[id]"] <= len(polls) <= stats["/agent/job/[id]"] + USERS
        assert len(prompts) >= USERS  # every user asked at least once
        owners = {e["owner"] for e in prompts}
        assert len(owners) == USERS  # each user is its own agent (its own key)

        out = tmp_path / "report"
        result = CliRunner().invoke(
            main, ["experiment", "report", "--base-url", base_url, "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    metrics = results["policies"][0]["metrics"]
    assert metrics["requests"] == len(entries)
    assert metrics["prompts_sent"] == len(prompts)
    assert metrics["jobs_created"] == sum(1 for e in prompts if e["status"] == 202)
    assert metrics["successes"] > 0
    assert (out / "report.html").read_text().count("<svg") == 4
