"""``mockbankr experiment run --base-url``: the same fleet, live, against a running server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from mockbankr.cli import main
from tests.experiments.conftest import serve

pytestmark = pytest.mark.live

FILE = """
[experiment]
name = "live"
seed = 9
duration_s = 4.0

[fleet]
agents = 8
mix = { price = 1.0 }

[[faults]]
match = { method = "GET", path = "/agent/job/*" }
action = { respond = { status = 503 } }
times = 3

[[policies]]
name = "reference"
kind = "reference"

[[policies]]
name = "naive"
kind = "naive"
"""


def _run(base_url: str, tmp_path: Path) -> tuple[dict[str, object], str]:
    file = tmp_path / "live.toml"
    file.write_text(FILE)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["experiment", "run", str(file), "--base-url", base_url, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text()), result.output


def test_a_live_run_is_measured_from_the_servers_records(tmp_path: Path) -> None:
    with serve("--speed", "50", "--journal-size", "100000") as base_url:
        results, _ = _run(base_url, tmp_path)
        # The last policy's run is what the server holds now.
        entries = httpx.get(f"{base_url}/__mock/journal").json()["entries"]
        rules = httpx.get(f"{base_url}/__mock/rules").json()["rules"]
    assert str(results["mode"]).startswith("live")
    policies = results["policies"]
    assert isinstance(policies, list)
    naive = policies[1]
    assert naive["journal"] == {"covered": True, "recorded": len(entries), "sent": len(entries)}
    assert naive["metrics"]["requests"] == len(entries)
    assert naive["metrics"]["server_errors"] == 3  # the fault was installed for this policy
    assert rules[0]["remaining"] == 0
    for policy in policies:
        m = policy["metrics"]
        assert m["successes"] >= 6
        fates = m["successes"] + m["failures"] + m["cancelled"] + m["timeouts"]
        assert fates + m["still_running"] == m["jobs_created"]


def test_a_journal_too_small_for_the_run_is_said_so(tmp_path: Path) -> None:
    with serve("--speed", "50", "--journal-size", "10") as base_url:
        results, output = _run(base_url, tmp_path)
    policies = results["policies"]
    assert isinstance(policies, list)
    coverage = policies[0]["journal"]
    assert coverage["covered"] is False
    assert coverage["recorded"] == 10 < coverage["sent"]
    assert "the journal kept 10 of the run's" in coverage["note"]
    assert "the journal kept 10" in output
