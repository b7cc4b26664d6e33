"""``peer/sdk-run.mjs`` drives the official ``@bankr/sdk`` 0.1.0-alpha.8 (needs ``make peer``).

The server's ``/v2`` (x402) flavour is not there yet, so these tests only pin the
script: it loads the SDK, the SDK derives the payer from the key as eth-account does,
and an HTTP error comes back as one clean JSON line with the SDK's own message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from mockbankr import VirtualClock

if TYPE_CHECKING:  # conftest is not importable at run time (tests/ is no package)
    from pathlib import Path

    from .conftest import SdkRun, ServerFactory

pytestmark = pytest.mark.peer

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
