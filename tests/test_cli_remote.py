"""`mockbankr ledger | rules | journal` against a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from mockbankr import VirtualClock
from mockbankr.cli import main
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
        ("/agent/job/job_X", 404, "bk_j")
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
