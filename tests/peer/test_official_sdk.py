"""The official ``@bankr/sdk`` 0.1.0-alpha.8 against a live mockbankr (needs ``make peer``).

``peer/sdk-run.mjs`` runs one SDK call per Node process (about 1 s, mostly the import).
The SDK pays ``/v2/prompt`` through x402-fetch 1.2.0 and signs each job request with viem;
the tests check what it gets back, and the ledger afterwards: one ``"100000"`` entry per
prompt, from the SDK's own wallet.

x402-fetch signs the authorization's validity window with the wall clock (``Date.now()``),
so a live server checks payments on wall time however its simulated clock runs: the server
here runs at speed 20 and its clock is moved an hour ahead first, which would make every
payment look expired if the window were checked on simulated time. Jobs are made short with
a ``latency`` rule, and the SDK's poll interval (ms) is small, so no test waits long. The
first tests pin the script itself: it loads the SDK, the SDK derives the payer from the key
as eth-account does, and an HTTP error comes back as one clean JSON line with the SDK's own
message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from mockbankr import VirtualClock

if TYPE_CHECKING:  # conftest is not importable at run time (tests/ is no package)
    from pathlib import Path

    from mockbankr.testing import LiveServer

    from .conftest import SdkRun, ServerFactory

pytestmark = pytest.mark.peer

PRICE = "What is the price of ETH?"
USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
#: Price queries complete 0.3 s after submission; "stuck" prompts never finish.
FAST = {"match": {"prompt": "price"}, "action": {"job": {"latency": 0.3, "outcome": "completed"}}}
STUCK_PROMPT = "Analyze the ETH market (stuck)"
STUCK = {"match": {"prompt": "stuck"}, "action": {"job": {"outcome": "stuck"}}}

#: Anvil's second well-known development key: never holds anything real.
PRIVATE_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
PAYER = Account.from_key(PRIVATE_KEY).address


def test_the_sdk_loads_and_derives_the_payer(sdk_run: SdkRun) -> None:
    code, out = sdk_run(
        {"op": "address", "baseUrl": "http://127.0.0.1:9", "privateKey": PRIVATE_KEY}
    )

    assert (code, out["ok"], out["result"], out["wallet"]) == (0, True, PAYER, PAYER)


def test_an_http_error_is_one_clean_line_with_the_sdks_message(
    sdk_run: SdkRun, serve: ServerFactory
) -> None:
    server = serve(clock=VirtualClock(), seed=1)
    # The server's answer to the SDK's signed cancel of an unknown job (an error either way).
    message = "Cancel job job_NOPE"
    signature = Account.sign_message(encode_defunct(text=message), PRIVATE_KEY).signature
    answer = httpx.post(
        f"{server.base_url}/v2/job/job_NOPE/cancel",
        headers={
            "wallet-address": PAYER,
            "x-signature": "0x" + signature.hex().removeprefix("0x"),
            "x-message": message,
        },
    )
    assert answer.is_error, answer.text

    code, out = sdk_run(
        {
            "op": "cancelJob",
            "baseUrl": server.base_url,
            "privateKey": PRIVATE_KEY,
            "jobId": "job_NOPE",
        }
    )

    assert code == 1
    assert out["ok"] is False
    assert out["error"] == {
        "name": "Error",
        "message": f"Cancel request failed: {answer.json()['message']}",
    }


def test_a_bad_command_is_a_usage_error(sdk_run: SdkRun) -> None:
    code, out = sdk_run(
        {"op": "prompt", "baseUrl": "http://127.0.0.1:9", "privateKey": PRIVATE_KEY}
    )

    assert (code, out["ok"], out["error"]["name"]) == (2, False, "UsageError")
    assert out["error"]["message"] == '"prompt" is required for op prompt'


def test_a_missing_sdk_says_make_peer(sdk_run: SdkRun, tmp_path: Path) -> None:
    command = {"op": "address", "baseUrl": "http://127.0.0.1:9", "privateKey": PRIVATE_KEY}

    code, out = sdk_run(command, env={"MOCKBANKR_PEER_DIR": str(tmp_path)})

    assert (code, out["ok"], out["error"]["name"]) == (2, False, "UsageError")
    assert out["error"]["message"].endswith("run `make peer`")


# -- paying and polling against a live server --------------------------------------------


def fast_server(serve: ServerFactory) -> LiveServer:
    """Speed 20, its clock an hour ahead of wall time (see the module docstring), FAST/STUCK."""
    server = serve(speed=20.0, seed=1)
    moved = httpx.post(f"{server.base_url}/__mock/clock", json={"advance": 3600})
    assert moved.status_code == 200, moved.text
    for rule in (FAST, STUCK):
        response = httpx.post(f"{server.base_url}/__mock/rules", json=rule)
        assert response.status_code == 201, response.text
    return server


def control(server: LiveServer, endpoint: str, **params: str) -> Any:
    response = httpx.get(f"{server.base_url}/__mock/{endpoint}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def sdk(sdk_run: SdkRun, server: LiveServer, op: str, **args: Any) -> dict[str, Any]:
    """Run one SDK call that must resolve; its output line (``wallet`` is the SDK's payer)."""
    code, out = sdk_run({"op": op, "baseUrl": server.base_url, "privateKey": PRIVATE_KEY, **args})
    assert (code, out["ok"]) == (0, True), out
    assert out["wallet"] == PAYER
    return out


def assert_paid_once_each(server: LiveServer, job_ids: list[str]) -> dict[str, Any]:
    """The ledger: exactly one entry of 100000 from the SDK's wallet per prompt."""
    summary: dict[str, Any] = control(server, "ledger")
    assert [
        (entry["jobId"], entry["payer"], entry["amountAtomic"]) for entry in summary["entries"]
    ] == [(job_id, PAYER, "100000") for job_id in job_ids]
    assert list(summary["byPayer"]) == [PAYER]
    assert summary["byPayer"][PAYER]["count"] == len(job_ids)
    assert summary["totalAtomic"] == str(100_000 * len(job_ids))
    return summary


def test_prompt_and_wait_pays_once_and_completes(sdk_run: SdkRun, serve: ServerFactory) -> None:
    server = fast_server(serve)

    out = sdk(sdk_run, server, "promptAndWait", prompt=PRICE, interval=50, maxAttempts=100)

    job = out["result"]
    assert job["status"] == "completed"
    assert job["prompt"] == PRICE
    assert job["response"]
    summary = assert_paid_once_each(server, [job["jobId"]])
    assert summary["byStatus"]["completed"]["count"] == 1
    # x402-fetch's flow: the unpaid try, then one paid resend; then signed polls.
    prompts = control(server, "journal", method="POST", path="/v2/prompt")["entries"]
    assert [entry["status"] for entry in prompts] == [402, 202]
    polls = control(server, "journal", method="GET", path=f"/v2/job/{job['jobId']}")["entries"]
    assert polls
    assert {entry["status"] for entry in polls} == {200}


def test_prompt_get_job_status_cancel_job_and_poll_a_cancelled_job(
    sdk_run: SdkRun, serve: ServerFactory
) -> None:
    server = fast_server(serve)

    submitted = sdk(sdk_run, server, "prompt", prompt=STUCK_PROMPT)["result"]
    job_id = submitted["jobId"]
    assert submitted == {
        "success": True,
        "jobId": job_id,
        "status": "pending",
        "message": submitted["message"],
        "price": {"amount": "100000", "asset": USDC},
    }

    seen = sdk(sdk_run, server, "getJobStatus", jobId=job_id)["result"]
    assert (seen["jobId"], seen["prompt"]) == (job_id, STUCK_PROMPT)
    assert seen["status"] in {"pending", "processing"}
    assert seen["cancellable"] is True

    cancelled = sdk(sdk_run, server, "cancelJob", jobId=job_id)["result"]
    assert set(cancelled) == {"success", "jobId", "status", "prompt", "createdAt", "cancelledAt"}
    assert (cancelled["jobId"], cancelled["status"]) == (job_id, "cancelled")

    # Spec 3.1 #1: only completed and failed end the SDK's polling, so a cancelled job
    # is polled until maxAttempts runs out.
    code, out = sdk_run(
        {
            "op": "pollJob",
            "baseUrl": server.base_url,
            "privateKey": PRIVATE_KEY,
            "jobId": job_id,
            "interval": 10,
            "maxAttempts": 3,
        }
    )
    assert (code, out["ok"]) == (1, False)
    assert out["error"]["message"] == "Max polling attempts (3) exceeded"
    polls = control(server, "journal", method="GET", path=f"/v2/job/{job_id}")["entries"]
    assert len(polls) == 1 + 3  # getJobStatus, then pollJob's three attempts
    assert {entry["status"] for entry in polls} == {200}

    summary = assert_paid_once_each(server, [job_id])  # polling and cancelling are free
    assert summary["byStatus"]["cancelled"]["count"] == 1
