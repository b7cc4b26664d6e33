"""The official ``@bankr/cli`` 0.1.3 against a live mockbankr (needs ``make peer``).

What the CLI does (``.peer/node_modules/@bankr/cli/dist``): ``prompt`` POSTs
``/agent/prompt`` then GETs ``/agent/job/{id}`` at once and every 2 wall seconds until
a terminal status; ``status`` GETs the job once; ``cancel`` POSTs ``.../cancel`` once.
Every call sends ``X-API-Key``; a non-2xx answer prints ``API error (<status>):
<message or error>`` and exits 1. Without a TTY its spinner writes plain lines to
stderr and colours are off, so the output can be compared exactly.

Two kinds of server: a prompt needs time to run on its own while the CLI polls, so it
gets a ScaledClock at speed 50 (a 2-5 s price query ends within 0.1 wall s, before the
CLI's second poll, 2 s in). Everything else gets a VirtualClock that the test moves, so
a job is pending, processing or completed exactly when the CLI looks. No test sleeps:
all waiting is the CLI's own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import decimal
import json
import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from mockbankr import Settings, VirtualClock
from mockbankr.clock import iso
from mockbankr.testing import LiveServer

if TYPE_CHECKING:  # conftest is not importable at run time (tests/ is no package)
    from pathlib import Path

    from .conftest import BankrCli, PeerPaths, ServerFactory

pytestmark = pytest.mark.peer

KEY = "bk_test"
PRICE = "What is the price of ETH?"
ANALYSIS = "Give me a deep analysis of ETH sentiment"
#: A price query takes 2-5 simulated s: 0.04-0.1 wall s, done before the second poll.
SPEED = 50.0
JOB_ID = re.compile(r"^Job ID:  (job_\w+)$", re.MULTILINE)


def submit(server: LiveServer, prompt: str, key: str = KEY) -> str:
    response = httpx.post(
        f"{server.base_url}/agent/prompt", json={"prompt": prompt}, headers={"X-API-Key": key}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def fetch(server: LiveServer, job_id: str, key: str = KEY) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/agent/job/{job_id}", headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def frozen(serve: ServerFactory, **options: Any) -> tuple[LiveServer, VirtualClock]:
    clock = VirtualClock()
    return serve(clock=clock, seed=1, **options), clock


def js_duration(ms: int) -> str:
    """The CLI's ``formatDuration``: ``(ms / 1000).toFixed(1)`` rounds the exact double."""
    if ms < 1000:
        return f"{ms}ms"
    seconds = decimal.Decimal(ms / 1000).quantize(decimal.Decimal("0.1"), decimal.ROUND_HALF_UP)
    return f"{seconds}s"


# -- bankr prompt ------------------------------------------------------------------


def test_prompt_waits_for_the_job_and_prints_its_response(
    bankr: BankrCli, serve: ServerFactory
) -> None:
    server = serve(speed=SPEED, seed=1)

    result = bankr.run("prompt", PRICE, url=server.base_url)

    assert result.returncode == 0, result.stderr
    match = JOB_ID.search(result.stdout)
    assert match, result.stdout
    job_id = match[1]
    job = fetch(server, job_id)
    assert job["status"] == "completed"
    assert job["prompt"] == PRICE
    assert job["response"] in server.app.state.simulator.table["price"].responses
    assert result.stdout == (
        f"Job ID:  {job_id}\nThread ID:  {job['threadId']}\n\n\n{job['response']}\n"
    )
    assert result.stderr == (
        "- Submitting prompt...\n"
        "✔ Prompt submitted\n"
        "- Processing...\n"
        f"✔ Completed in {js_duration(job['processingTime'])} ({job_id})\n"
    )
    # The CLI keeps the thread for `bankr prompt -c`.
    assert json.loads(bankr.config_file.read_text()) == {"lastThreadId": job["threadId"]}


def test_prompt_reads_stdin_and_sends_the_thread(bankr: BankrCli, serve: ServerFactory) -> None:
    server = serve(speed=SPEED, seed=1)

    result = bankr.run("prompt", "--thread", "thr_mine", url=server.base_url, stdin=PRICE + "\n")

    assert result.returncode == 0, result.stderr
    match = JOB_ID.search(result.stdout)
    assert match, result.stdout
    job = fetch(server, match[1])
    assert (job["status"], job["prompt"], job["threadId"]) == ("completed", PRICE, "thr_mine")
    assert "Thread ID:  thr_mine\n" in result.stdout
    assert result.stdout.endswith(f"\n{job['response']}\n")
    assert json.loads(bankr.config_file.read_text()) == {"lastThreadId": "thr_mine"}


# -- bankr status ------------------------------------------------------------------


def test_status_shows_a_pending_job(bankr: BankrCli, serve: ServerFactory) -> None:
    server, _ = frozen(serve)
    job_id = submit(server, ANALYSIS)
    job = fetch(server, job_id)
    assert job["status"] == "pending"

    result = bankr.run("status", job_id, url=server.base_url)

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f'Job:  {job_id}\nStatus:  pending\nPrompt:  "{ANALYSIS}"\nCreated:  {job["createdAt"]}\n'
    )
    assert result.stderr == "- Fetching job status...\n"


def test_status_shows_a_completed_job_with_its_response(
    bankr: BankrCli, serve: ServerFactory
) -> None:
    server, clock = frozen(serve)
    job_id = submit(server, PRICE)
    clock.advance(60)
    job = fetch(server, job_id)
    assert job["status"] == "completed"

    result = bankr.run("status", job_id, url=server.base_url)

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"Job:  {job_id}\n"
        "Status:  completed\n"
        f'Prompt:  "{PRICE}"\n'
        f"Created:  {job['createdAt']}\n"
        f"Started:  {job['startedAt']}\n"
        f"Completed:  {job['completedAt']}\n"
        f"Duration:  {js_duration(job['processingTime'])}\n"
        "\n"
        f"{job['response']}\n"
    )


def test_status_of_an_unknown_job_is_the_404(bankr: BankrCli, serve: ServerFactory) -> None:
    server, _ = frozen(serve)

    result = bankr.run("status", "job_NOPE", url=server.base_url)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "- Fetching job status...\n"
        "✖ Failed to fetch job status\n"
        "✗ API error (404): No job found with ID job_NOPE\n"
    )


# -- bankr cancel ------------------------------------------------------------------


@pytest.mark.parametrize(("elapsed", "status"), [(0.0, "pending"), (3.0, "processing")])
def test_cancel_stops_a_live_job(
    bankr: BankrCli, serve: ServerFactory, elapsed: float, status: str
) -> None:
    server, clock = frozen(serve)
    job_id = submit(server, ANALYSIS)  # 10-30 s, of which 0.5-2 s pending
    clock.advance(elapsed)
    assert fetch(server, job_id)["status"] == status
    cancelled_at = iso(clock.now())

    result = bankr.run("cancel", job_id, url=server.base_url)

    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"Job:  {job_id}\nStatus:  cancelled\n✓ Job cancelled successfully\n")
    assert result.stderr == "- Cancelling job...\n"
    clock.advance(60)  # long past the job's scheduled end: it stays cancelled
    job = fetch(server, job_id)
    assert (job["status"], job["cancelledAt"], job["cancellable"]) == (
        "cancelled",
        cancelled_at,
        False,
    )
    assert "response" not in job


def test_cancel_of_a_cancelled_job_succeeds_again(bankr: BankrCli, serve: ServerFactory) -> None:
    server, _ = frozen(serve)
    job_id = submit(server, ANALYSIS)
    first = httpx.post(f"{server.base_url}/agent/job/{job_id}/cancel", headers={"X-API-Key": KEY})
    assert first.status_code == 200, first.text

    result = bankr.run("cancel", job_id, url=server.base_url)

    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"Job:  {job_id}\nStatus:  cancelled\n✓ Job cancelled successfully\n")
    assert fetch(server, job_id)["cancelledAt"] == first.json()["cancelledAt"]


def test_cancel_of_a_completed_job_fails_with_the_400(
    bankr: BankrCli, serve: ServerFactory
) -> None:
    # mockbankr answers 400 {"error": "Job already completed", "message": ...}; the CLI
    # only prints "Job is completed and could not be cancelled" (exit 0) for a 200
    # carrying the current status (docs/wire.md 1.5 and 5). With the 400 it is an error.
    server, clock = frozen(serve)
    job_id = submit(server, PRICE)
    clock.advance(60)
    assert fetch(server, job_id)["status"] == "completed"

    result = bankr.run("cancel", job_id, url=server.base_url)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "- Cancelling job...\n"
        "✖ Failed to cancel job\n"
        f"✗ API error (400): Job {job_id} is already completed and cannot be cancelled\n"
    )
    assert fetch(server, job_id)["status"] == "completed"


# -- keys and configuration ----------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "failure"),
    [
        ("prompt", "Failed to submit prompt"),
        ("cancel", "Failed to cancel job"),  # `status`: see the config file test
    ],
)
def test_a_wrong_key_gets_the_401(
    bankr: BankrCli, serve: ServerFactory, command: str, failure: str
) -> None:
    server, _ = frozen(serve, settings=Settings(seed=1, api_keys=frozenset({"bk_good"})))
    job_id = submit(server, ANALYSIS, key="bk_good")
    argument = PRICE if command == "prompt" else job_id

    result = bankr.run(command, argument, url=server.base_url, key="bk_wrong")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.endswith(
        f"✖ {failure}\n✗ API error (401): API key is missing or invalid\n"
    )
    assert asyncio.run(server.store.count()) == 1  # no job was created
    assert fetch(server, job_id, key="bk_good")["status"] == "pending"


def test_no_key_anywhere_stops_before_any_request(bankr: BankrCli, serve: ServerFactory) -> None:
    server, _ = frozen(serve)

    result = bankr.run("prompt", PRICE, url=server.base_url, key=None)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "✗ Not authenticated. Run `bankr login` to set up your Bankr API key.\n"
    )
    assert asyncio.run(server.store.count()) == 0


def test_the_config_file_is_read_and_the_environment_wins(
    bankr: BankrCli, serve: ServerFactory
) -> None:
    server, _ = frozen(serve, settings=Settings(seed=1, api_keys=frozenset({"bk_good"})))
    job_id = submit(server, ANALYSIS, key="bk_good")
    bankr.config_file.parent.mkdir()
    bankr.config_file.write_text(json.dumps({"apiUrl": server.base_url, "apiKey": "bk_stale"}))

    from_file = bankr.run("status", job_id, url=None, key=None)
    from_env = bankr.run("status", job_id, url=None, key="bk_good")

    assert from_file.returncode == 1
    assert from_file.stderr.endswith("✗ API error (401): API key is missing or invalid\n")
    assert from_env.returncode == 0, from_env.stderr
    assert from_env.stdout.startswith(f"Job:  {job_id}\nStatus:  pending\n")


def test_a_missing_install_skips_and_says_make_peer(peer_paths: PeerPaths, tmp_path: Path) -> None:
    missing = dataclasses.replace(peer_paths, bankr=tmp_path / "bankr", required=False)

    with pytest.raises(pytest.skip.Exception, match=r"is missing\): run `make peer`"):
        missing.require(missing.bankr, "@bankr/cli")


def test_a_missing_install_fails_when_peers_are_required(
    peer_paths: PeerPaths, tmp_path: Path
) -> None:
    missing = dataclasses.replace(peer_paths, bankr=tmp_path / "bankr", required=True)

    with pytest.raises(pytest.fail.Exception, match=r"run `make peer`.*REQUIRE_PEERS=1"):
        missing.require(missing.bankr, "@bankr/cli")
