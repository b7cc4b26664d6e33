"""The official ``@bankr/cli`` 0.1.3 meets an injected fault (needs ``make peer``).

The CLI cannot send ``X-Mockbankr-*`` headers, so the fault comes from a rule posted to
the live server's ``/__mock/rules``: one 503 on the next ``GET /agent/job/*``. The CLI
polls at once after its prompt and treats any non-2xx while polling as fatal (docs/wire.md 5,
point 2), so that single 503 ends the command with "API error (503)" and exit 1, and
leaves the job running on the server. The reference client, given the same rule, retries
the read and completes.

The server runs a ScaledClock at speed 50: the CLI never reaches its 2 s poll interval
(it fails on its first poll), and the reference client runs on the server's clock, so its
backoff and its 2 s poll interval take 1/50 of that in wall time. No test sleeps.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from bankr_client import BankrClient

from mockbankr.testing import LiveServer

if TYPE_CHECKING:  # conftest is not importable at run time (tests/ is no package)
    from .conftest import BankrCli, ServerFactory

pytestmark = pytest.mark.peer

KEY = "bk_test"
PRICE = "What is the price of ETH?"
SPEED = 50.0
JOB_ID = re.compile(r"^Job ID:  (job_\w+)$", re.MULTILINE)
#: The rule of the issue, verbatim.
ONE_503 = {
    "match": {"method": "GET", "path": "/agent/job/*"},
    "action": {
        "respond": {"status": 503, "body": {"error": "Service unavailable", "message": "Try again"}}
    },
    "times": 1,
}


def add_rule(server: LiveServer, rule: dict[str, Any]) -> None:
    response = httpx.post(f"{server.base_url}/__mock/rules", json=rule)
    assert response.status_code == 201, response.text


def job_requests(server: LiveServer, job_id: str) -> list[tuple[int, str | None]]:
    """``(status, fault)`` of every request about ``job_id``, prompt first."""
    response = httpx.get(f"{server.base_url}/__mock/journal", params={"job_id": job_id})
    assert response.status_code == 200, response.text
    return [(e["status"], e["fault"]) for e in response.json()["entries"]]


def job_detail(server: LiveServer, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/__mock/jobs/{job_id}")
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def test_the_cli_fails_on_an_injected_503_while_the_reference_client_completes(
    bankr: BankrCli, serve: ServerFactory
) -> None:
    server = serve(speed=SPEED, seed=1)
    add_rule(server, ONE_503)

    result = bankr.run("prompt", PRICE, url=server.base_url, key=KEY)

    assert result.returncode == 1
    match = JOB_ID.search(result.stdout)
    assert match, result.stdout
    cli_job = match[1]
    assert result.stderr == (
        "- Submitting prompt...\n"
        "✔ Prompt submitted\n"
        "- Processing...\n"
        "✖ Error while polling\n"
        "✗ API error (503): Try again\n"
    )
    # One poll, the 503, and the CLI gave up: no retry, and no cancel either.
    assert job_requests(server, cli_job) == [(202, None), (503, "respond")]
    assert job_detail(server, cli_job)["schedule"]["cancelledAt"] is None
    assert not bankr.config_file.exists()  # the thread is saved only after a final status

    add_rule(server, ONE_503)
    with BankrClient(server.base_url, KEY, clock=server.clock) as client:
        final = client.prompt_and_wait(PRICE)

    assert final.status == "completed"
    assert final.response
    requests = job_requests(server, final.job_id)
    assert requests[:3] == [(202, None), (503, "respond"), (200, None)]
    assert all(request == (200, None) for request in requests[2:])
    assert job_detail(server, final.job_id)["status"] == "completed"
