"""`mockbankr ledger | rules | journal | clock | jobs | reset` against a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from mockbankr import VirtualClock
from mockbankr.cli import main
from mockbankr.journal import key_fingerprint
from mockbankr.testing import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(clock=VirtualClock(), seed=5) as live:
        yield live


def run(server: LiveServer, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--url", server.base_url])
    assert result.exit_code == 0, result.output
    return result.output


def test_rules_add_list_and_clear(server: LiveServer, tmp_path: Path) -> None:
    rule = '{"match": {"path": "/agent/job/*"}, "action": {"respond": {"status": 503}}, "times": 2}'
    assert run(server, "rules", "add", rule).startswith("added rule r")
    listed = json.loads(run(server, "rules", "list", "--json"))
    assert [r["remaining"] for r in listed["rules"]] == [2]
    assert "503" in run(server, "rules", "list")
    toml = tmp_path / "rules.toml"
    toml.write_text(
        "[[rules]]\n[rules.action.drop]\n[[rules]]\n[rules.action.malformed]\n", encoding="utf-8"
    )
    assert run(server, "rules", "add", "--file", str(toml)).count("added rule") == 2
    run(server, "rules", "clear")
    assert json.loads(run(server, "rules", "list", "--json")) == {"rules": []}


def test_rules_add_refuses_bad_input_before_calling_the_server(server: LiveServer) -> None:
    for args in (["rules", "add", "{nope"], ["rules", "add", '{"action": {}}'], ["rules", "add"]):
        result = CliRunner().invoke(main, [*args, "--url", server.base_url])
        assert result.exit_code == 2, args


def test_journal_shows_and_clears_requests(server: LiveServer) -> None:
    run(server, "journal", "--clear")
    httpx.get(server.base_url + "/_health")
    httpx.get(server.base_url + "/agent/job/job_X", headers={"X-API-Key": "bk_j"})
    entries = json.loads(run(server, "journal", "--json", "--path", "/agent/*"))["entries"]
    assert [(e["path"], e["status"], e["owner"]) for e in entries] == [
        ("/agent/job/job_X", 404, key_fingerprint("bk_j"))
    ]
    assert "/_health" in run(server, "journal")


def test_ledger_prints_totals(server: LiveServer) -> None:
    data = json.loads(run(server, "ledger", "--json"))
    assert (data["count"], data["totalUsdc"]) == (0, "0")
    assert "0 paid prompts" in run(server, "ledger")


def test_an_unreachable_server_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["ledger", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach mockbankr" in result.output


def _submit(server: LiveServer, key: str, prompt: str = "What is the price of ETH?") -> str:
    response = httpx.post(
        server.base_url + "/agent/prompt", json={"prompt": prompt}, headers={"X-API-Key": key}
    )
    job_id: str = response.json()["jobId"]
    return job_id


def test_clock_get_and_advance_move_the_servers_clock(server: LiveServer) -> None:
    before = json.loads(run(server, "clock", "get", "--json"))
    after = json.loads(run(server, "clock", "advance", "90", "--json"))
    assert (before["kind"], after["unix"] - before["unix"]) == ("virtual", 90)
    assert after["now"] in run(server, "clock", "get")


def test_clock_speed_changes_a_scaled_clock() -> None:
    with LiveServer(speed=3, seed=1) as scaled:
        assert json.loads(run(scaled, "clock", "speed", "7.5", "--json"))["speed"] == 7.5
        assert "7.5x" in run(scaled, "clock", "get")
    result = CliRunner().invoke(main, ["clock", "speed", "0", "--url", scaled.base_url])
    assert result.exit_code == 2  # refused before any request


def test_jobs_list_show_and_outcome_steer_one_job(server: LiveServer) -> None:
    job_id = _submit(server, "bk_jobs", "Swap 10 USDC for ETH")
    listed = json.loads(run(server, "jobs", "list", "--owner", "bk_jobs", "--json"))
    assert [j["jobId"] for j in listed["jobs"]] == [job_id]
    assert "1 job of 1" in run(server, "jobs", "list", "--owner", "bk_jobs")
    steer = ["jobs", "outcome", job_id, "failed", "--error", "No route", "--finish-in", "0"]
    forced = json.loads(run(server, *steer, "--json"))
    assert (forced["jobId"], forced["outcome"]) == (job_id, "failed")
    shown = json.loads(run(server, "jobs", "show", job_id, "--json"))
    assert (shown["status"], shown["body"]["error"]) == ("failed", "No route")
    again = CliRunner().invoke(main, ["jobs", "outcome", job_id, "completed", "--url",
                                      server.base_url])  # fmt: skip
    assert again.exit_code == 1
    assert "409" in again.output


def test_rules_delete_removes_only_that_rule(server: LiveServer) -> None:
    run(server, "rules", "clear")
    first = run(server, "rules", "add", '{"action": {"drop": {}}}').split()[-1]
    second = run(server, "rules", "add", '{"action": {"malformed": {}}}').split()[-1]
    assert run(server, "rules", "delete", first) == f"deleted rule {first}\n"
    assert [r["id"] for r in json.loads(run(server, "rules", "list", "--json"))["rules"]] == [
        second
    ]
    assert run(server, "rules", "list").splitlines()[0].strip() == "1 rule, evaluated in order"
    missing = CliRunner().invoke(main, ["rules", "delete", first, "--url", server.base_url])
    assert (missing.exit_code, "404" in missing.output) == (1, True)
    run(server, "rules", "clear")


def test_journal_filters_by_job_id_and_fault(server: LiveServer) -> None:
    run(server, "journal", "--clear")
    job_id = _submit(server, "bk_filter")
    httpx.get(server.base_url + f"/agent/job/{job_id}", headers={"X-API-Key": "bk_filter"})
    httpx.get(
        server.base_url + f"/agent/job/{job_id}",
        headers={"X-API-Key": "bk_filter", "X-Mockbankr-Fault": "503"},
    )
    by_job = json.loads(run(server, "journal", "--job-id", job_id, "--json"))["entries"]
    assert [e["status"] for e in by_job] == [202, 200, 503]
    faulted = json.loads(run(server, "journal", "--fault", "respond", "--json"))["entries"]
    assert [(e["jobId"], e["status"]) for e in faulted] == [(job_id, 503)]
    assert run(server, "journal", "--fault", "respond").splitlines()[0].strip() == "1 request"


def test_tables_keep_every_value_whole_in_a_pipe(server: LiveServer) -> None:
    run(server, "journal", "--clear")
    key = "bk_a_rather_long_api_key_that_would_not_fit_80_columns"
    job_id = _submit(server, key)
    long_path = "/agent/job/job_a_rather_long_job_id_that_would_not_fit_80_columns_either"
    httpx.get(server.base_url + long_path, headers={"X-API-Key": key})
    output = run(server, "journal")  # CliRunner's stdout is not a terminal
    assert job_id in output
    assert long_path in output
    assert output.count(key_fingerprint(key)) == 2  # whole, never cut to "bk_…3f…"
    assert key not in output  # the journal never shows a key
    assert max(len(line) for line in output.splitlines()) > 80


def test_reset_forgets_jobs(server: LiveServer) -> None:
    _submit(server, "bk_reset")
    assert run(server, "reset") == "reset: back to 0 start rules\n"
    assert json.loads(run(server, "jobs", "list", "--json"))["total"] == 0
