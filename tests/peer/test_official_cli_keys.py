"""The official ``@bankr/cli`` 0.1.3 with a revoked or rotated key (needs ``make peer``).

Bankr answers a revoked or rotated key with ``401 Invalid API key`` (spec 1.8); the CLI
prints ``API error (401): <message>`` and exits 1, whatever the command.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx
import pytest

from mockbankr import Settings, VirtualClock
from mockbankr.accounts import parse_keys

if TYPE_CHECKING:  # conftest is not importable at run time (tests/ is no package)
    from .conftest import BankrCli, ServerFactory

pytestmark = pytest.mark.peer

ANALYSIS = "Give me a deep analysis of ETH sentiment"
MESSAGE = "✗ API error (401): API key is missing or invalid\n"
KEYS = parse_keys(
    {
        "accounts": {"acme": {"plan": "club"}},
        "keys": [{"key": "bk_agent", "account": "acme"}, {"key": "bk_ops", "account": "acme"}],
    }
)


@pytest.mark.parametrize(("verb", "body"), [("revoke", {}), ("rotate", {"newKey": "bk_agent_2"})])
@pytest.mark.parametrize(
    ("command", "failure"),
    [("prompt", "✖ Failed to submit prompt\n"), ("cancel", "✖ Failed to cancel job\n")],
)
def test_a_revoked_or_rotated_key_exits_1_with_bankrs_message(
    bankr: BankrCli,
    serve: ServerFactory,
    verb: str,
    body: dict[str, str],
    command: str,
    failure: str,
) -> None:
    server = serve(clock=VirtualClock(), settings=Settings(seed=1, keys=KEYS))
    job = httpx.post(
        f"{server.base_url}/agent/prompt",
        json={"prompt": ANALYSIS},
        headers={"X-API-Key": "bk_agent"},
    )
    assert job.status_code == 202
    job_id = job.json()["jobId"]
    changed = httpx.post(f"{server.base_url}/__mock/keys/{verb}", json={"key": "bk_agent", **body})
    assert changed.status_code == 200

    result = bankr.run(
        command, ANALYSIS if command == "prompt" else job_id, url=server.base_url, key="bk_agent"
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.endswith(failure + MESSAGE)
    assert asyncio.run(server.store.count()) == 1  # nothing created
    polled = httpx.get(f"{server.base_url}/agent/job/{job_id}", headers={"X-API-Key": "bk_ops"})
    assert polled.json()["status"] == "pending"  # nothing cancelled


def test_status_with_a_revoked_key_exits_1(bankr: BankrCli, serve: ServerFactory) -> None:
    server = serve(clock=VirtualClock(), seed=1)
    job = httpx.post(
        f"{server.base_url}/agent/prompt",
        json={"prompt": ANALYSIS},
        headers={"X-API-Key": "bk_test"},
    )
    job_id = job.json()["jobId"]
    assert (
        httpx.post(f"{server.base_url}/__mock/keys/revoke", json={"key": "bk_test"}).status_code
        == 200
    )

    result = bankr.run("status", job_id, url=server.base_url, key="bk_test")

    assert result.returncode == 1
    assert result.stderr.endswith(MESSAGE)
