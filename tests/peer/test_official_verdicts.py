"""The official clients graded by ``GET /__mock/verdicts`` (needs ``make peer``).

* ``@bankr/sdk`` treats only ``completed`` and ``failed`` as terminal (spec 3.1 #1): after
  its job is cancelled, ``pollJob`` polls it until ``maxAttempts``. That fails
  ``stop-at-terminal``, with every poll after the first ``cancelled`` answer as evidence,
  and nothing else.
* ``@bankr/cli`` polls at once and then every 2 wall seconds until a terminal status,
  ``cancelled`` included: ``bankr prompt`` for a price query passes ``poll-interval`` and
  ``stop-at-terminal``, both exercised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from eth_account import Account

if TYPE_CHECKING:  # conftest is not importable at run time (tests/ is no package)
    from mockbankr.testing import LiveServer

    from .conftest import BankrCli, SdkRun, ServerFactory

pytestmark = pytest.mark.peer

PRICE = "What is the price of ETH?"
STUCK_PROMPT = "Analyze the ETH market (stuck)"
#: Anvil's second well-known development key: never holds anything real.
PRIVATE_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
PAYER = Account.from_key(PRIVATE_KEY).address


def add_rule(server: LiveServer, rule: dict[str, Any]) -> None:
    response = httpx.post(f"{server.base_url}/__mock/rules", json=rule)
    assert response.status_code == 201, response.text


def verdicts(server: LiveServer, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/__mock/verdicts", params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def sdk(sdk_run: SdkRun, server: LiveServer, op: str, **args: Any) -> tuple[int, dict[str, Any]]:
    return sdk_run({"op": op, "baseUrl": server.base_url, "privateKey": PRIVATE_KEY, **args})


def test_the_sdk_fails_stop_at_terminal_after_its_job_is_cancelled(
    sdk_run: SdkRun, serve: ServerFactory
) -> None:
    # Speed 20 with the clock an hour ahead: x402-fetch signs payments on wall time.
    server = serve(speed=20.0, seed=1)
    assert httpx.post(f"{server.base_url}/__mock/clock", json={"advance": 3600}).is_success
    add_rule(server, {"match": {"prompt": "stuck"}, "action": {"job": {"outcome": "stuck"}}})
    code, submitted = sdk(sdk_run, server, "prompt", prompt=STUCK_PROMPT)
    assert code == 0, submitted
    job_id = submitted["result"]["jobId"]
    code, cancelled = sdk(sdk_run, server, "cancelJob", jobId=job_id)
    assert (code, cancelled["result"]["status"]) == (0, "cancelled"), cancelled

    code, polled = sdk(sdk_run, server, "pollJob", jobId=job_id, interval=10, maxAttempts=4)

    assert code == 1
    assert polled["error"]["message"] == "Max polling attempts (4) exceeded"
    report = verdicts(server)
    (client,) = report["clients"]
    assert client["owner"] == PAYER
    assert client["failed"] == ["stop-at-terminal"]
    failure = client["verdicts"]["stop-at-terminal"]
    assert failure["count"] == 3  # polls 2, 3 and 4 all came after "cancelled"
    for incident in failure["evidence"]:
        told, again = incident["entries"]
        assert told["jobStatus"] == again["jobStatus"] == "cancelled"
        assert again["path"] == f"/v2/job/{job_id}"
        assert again["simTime"] >= told["simTime"]
    assert any(agent.startswith("node") for agent in client["userAgents"]), client


def test_the_cli_prompt_passes_poll_interval_and_stop_at_terminal(
    bankr: BankrCli, serve: ServerFactory
) -> None:
    # Speed 50: the CLI's 2 wall seconds between polls are 100 simulated seconds, and the
    # price query takes 50 (1 wall second): its first poll sees it running, its second done.
    server = serve(speed=50.0, seed=1)
    add_rule(server, {"match": {"prompt": "price"}, "action": {"job": {"latency": 50}}})

    result = bankr.run("prompt", PRICE, url=server.base_url)

    assert result.returncode == 0, result.stderr
    report = verdicts(server)
    (client,) = report["clients"]
    assert client["userAgents"] == ["bankr-cli/0.1"]
    outcomes = {check: v["verdict"] for check, v in client["verdicts"].items()}
    assert outcomes["poll-interval"] == "pass"
    assert outcomes["stop-at-terminal"] == "pass"
    assert client["failed"] == []
