"""`mockbankr verdicts` against a live server: a table, the evidence, and the exit status."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from mockbankr import VirtualClock
from mockbankr.cli import main
from mockbankr.testing import LiveServer

pytestmark = pytest.mark.live

PRICE = "What is the price of ETH?"


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer(clock=VirtualClock(), seed=5) as live:
        yield live


def use(server: LiveServer, key: str, *, extra_polls: int) -> str:
    """Prompt, poll every 2 simulated s until terminal, then ``extra_polls`` more."""
    assert isinstance(server.clock, VirtualClock)
    headers = {"X-API-Key": key, "User-Agent": "my-agent/2.0"}
    with httpx.Client(base_url=server.base_url, headers=headers) as http:
        job_id: str = http.post("/agent/prompt", json={"prompt": PRICE}).json()["jobId"]
        terminal = 0
        while terminal <= extra_polls:
            if http.get(f"/agent/job/{job_id}").json()["status"] == "completed":
                terminal += 1
            server.clock.advance(2)
    return job_id


def verdicts(server: LiveServer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["verdicts", "--url", server.base_url, *args])
    return result.exit_code, result.output


def test_a_clean_run_exits_0_and_shows_the_table(server: LiveServer) -> None:
    use(server, "bk_tidy", extra_polls=0)

    code, output = verdicts(server)

    assert code == 0, output
    assert "my-agent/2.0" in output
    assert "stop-at-terminal" in output
    assert "not-exercised" in output
    assert "fail" not in output.replace("not-exercised", "")


def test_a_failed_check_exits_1_with_its_evidence(server: LiveServer) -> None:
    use(server, "bk_tidy", extra_polls=0)
    job_id = use(server, "bk_sloppy", extra_polls=2)

    code, output = verdicts(server)
    code_json, raw = verdicts(server, "--json")
    code_one, only_tidy = verdicts(server, "--owner", "bk_tidy")

    assert code == 1, output
    assert "fails stop-at-terminal (2x):" in output
    assert f"GET /agent/job/{job_id} -> 200 (completed)" in output
    assert code_json == 1
    data = json.loads(raw)
    assert [c["failed"] for c in data["clients"]].count(["stop-at-terminal"]) == 1
    assert code_one == 0, only_tidy


def test_thresholds_are_options_and_a_bad_one_exits_2_naming_it(server: LiveServer) -> None:
    use(server, "bk_tidy", extra_polls=0)  # polls 2 s apart

    default_code, _ = verdicts(server)
    slow_code, slow = verdicts(server, "--interval", "100")
    code, output = verdicts(server, "--max-attempts", "zero")

    assert default_code == 0
    assert slow_code == 1
    assert "fails poll-interval" in slow
    assert code == 2
    assert "max_attempts" in output


def test_an_unreachable_server_exits_2() -> None:
    result = CliRunner().invoke(main, ["verdicts", "--url", "http://127.0.0.1:9"])

    assert result.exit_code == 2
    assert "cannot reach mockbankr" in result.output
