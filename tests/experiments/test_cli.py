"""``mockbankr experiment run``: the files it writes, its summary, and its errors."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mockbankr.cli import main

SMALL = """
[experiment]
name = "small"
seed = 3
duration_s = 5.0

[fleet]
agents = 4
mix = { price = 1.0, swap = 1.0 }

[[policies]]
name = "ref"
kind = "reference"

[[policies]]
name = "naive"
kind = "naive"
"""


def test_run_writes_results_jobs_and_report(tmp_path: Path) -> None:
    file = tmp_path / "small.toml"
    file.write_text(SMALL)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["experiment", "run", str(file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert [p["name"] for p in results["policies"]] == ["ref", "naive"]
    with (out / "jobs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["policy"] for r in rows} == {"ref", "naive"}
    for policy in results["policies"]:
        jobs = [r for r in rows if r["policy"] == policy["name"]]
        assert len(jobs) == policy["metrics"]["jobs_created"] >= 4
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    # The summary table names each policy and metric.
    assert "USDC wasted" in result.output
    assert "naive" in result.output


def test_an_unknown_key_fails_the_command_naming_it(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(SMALL.replace("agents = 4", "agents = 4\nagnets = 5"))
    result = CliRunner().invoke(main, ["experiment", "run", str(file), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "unknown key 'fleet.agnets'" in result.output
    assert not (tmp_path / "results.json").exists()


def test_without_matplotlib_it_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "small.toml"
    file.write_text(SMALL)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = CliRunner().invoke(main, ["experiment", "run", str(file), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "pip install 'mockbankr[experiments]'" in result.output
    result = CliRunner().invoke(
        main, ["experiment", "run", str(file), "--out", str(tmp_path), "--no-report"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results.json").exists()
    assert not (tmp_path / "report.html").exists()
