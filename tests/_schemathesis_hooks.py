"""schemathesis hooks for a run against mockbankr: credentials, and fault rules kept inert.

Loaded by the live run (``schemathesis run --config-file tests/schemathesis.toml``, which
names this module) and imported by the in-process run; both register the same global hooks.

**Credentials, from the document.** Each operation gets valid credentials for every security
scheme its first non-empty requirement names, whatever the operation (so routes added later
are covered without an edit here):

- ``apiKey``: :data:`KEY`, the key the server was started with (``--api-key``);
- ``adminToken``: :data:`TOKEN` (the in-process app is not on loopback, so it needs one);
- ``x402Payment``: a fresh x402 v1 payment by :data:`PAYER`, signed for the wall clock, as the
  official SDK signs it (a live server checks payment windows on the wall clock);
- ``walletAddress``/``walletSignature``/``signedMessage``: the EIP-191 headers of
  :data:`PAYER` for the case's ``jobId``, so the jobs :data:`PAYER` paid for (through the
  stateful links from ``POST /v2/prompt``) can be read and cancelled.

schemathesis still sends its own negative cases (a security header left out or wrong) and
its ``ignored_auth`` probes without these.

**Inert rules and directives.** A fault rule substitutes any answer on the Bankr routes (a
503, a dropped connection, an hour-long hang): what the document deliberately does not
describe. Each rule the run posts is therefore limited to an API key no request uses
(:data:`INERT_KEY`). Its shape is still validated and stored as generated, so
``POST /__mock/rules`` and the rule links are exercised in full. ``X-Mockbankr-*`` directive
headers schemathesis makes up (it finds their names in the document's description) are not
sent; the hooks send one of their own on each prompt, ``X-Mockbankr-Outcome: stuck``, so
that every job the run creates stays unfinished (cancellable, steerable) whatever the run
does to the clock. Key management never revokes, rotates or drops :data:`KEY` (see
:func:`_keep_our_key`), and after a reset of the live server the run's keys document
(:data:`RUN_KEYS`) is loaded again (see :func:`after_call`).
"""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any

import httpx
import schemathesis
from _x402_signing import make_payment_header, sign_job_headers
from eth_account import Account
from eth_account.signers.local import LocalAccount

from mockbankr.money import PaymentTerms
from mockbankr.x402 import challenge_body

__all__ = [
    "INERT_KEY",
    "KEY",
    "LIVE_URL",
    "PAYER",
    "REVOKE_KEY",
    "ROTATE_KEY",
    "RUN_ACCOUNT",
    "RUN_KEYS",
    "TOKEN",
    "credentials",
]

KEY = "bk_schemathesis"
TOKEN = "admin-token-for-schemathesis"
INERT_KEY = "bk_inert_no_request_sends_this"
#: The account a loaded keys document puts :data:`KEY` on.
RUN_ACCOUNT = "schemathesis-run"
#: Two more keys of the server, listed first and second (``--api-key`` keys are sorted, a
#: loaded document keeps its order): the keys the links from the keys listing revoke
#: (``keys/0``) and rotate (``keys/1``).
REVOKE_KEY = "bk_a_spare_to_revoke"
ROTATE_KEY = "bk_b_spare_to_rotate"
#: The run's keys document: the server's ``--api-key`` keys on one Club account.
_RUN_KEY_ENTRIES = [{"key": k, "account": RUN_ACCOUNT} for k in (REVOKE_KEY, ROTATE_KEY, KEY)]
RUN_KEYS: dict[str, Any] = {
    "accounts": {RUN_ACCOUNT: {"plan": "club"}},
    "keys": _RUN_KEY_ENTRIES,
}
PAYER: LocalAccount = Account.from_key("0x" + "5c" * 32)

#: What the server asks for by default (the run uses default payment terms).
_REQUIREMENTS = challenge_body(PaymentTerms(), "http://127.0.0.1/v2/prompt")["accepts"][0]
#: Payment nonces: a counter, so that no two payments of one run share one.
_NONCES = itertools.count(int(time.time() * 1000) << 64)
_HEADER_SAFE = re.compile(r"[!-~]+")
PROMPT_PATHS = ("/agent/prompt", "/v2/prompt")


def _security_schemes(case: schemathesis.Case) -> list[str]:
    requirements = case.operation.definition.raw.get("security", [])
    return next((list(r) for r in requirements if r), [])


#: The payments :func:`credentials` made: re-signed when sent (see :func:`before_call`).
_PAYMENTS: set[str] = set()


def credentials(case: schemathesis.Case) -> dict[str, str]:
    """Valid credentials for the case's operation, by its declared security schemes."""
    headers: dict[str, str] = {}
    schemes = _security_schemes(case)
    if "apiKey" in schemes:
        headers["X-API-Key"] = KEY
    if "adminToken" in schemes:
        headers["Authorization"] = f"Bearer {TOKEN}"
    if "x402Payment" in schemes:
        nonce = next(_NONCES).to_bytes(32, "big")
        headers["X-PAYMENT"] = make_payment_header(
            PAYER, _REQUIREMENTS, now=time.time(), nonce=nonce
        )
        _PAYMENTS.add(headers["X-PAYMENT"])
    if "walletSignature" in schemes:
        job_id = (case.path_parameters or {}).get("jobId")
        if isinstance(job_id, str) and _HEADER_SAFE.fullmatch(job_id):
            action = "cancel" if case.operation.path.endswith("/cancel") else "status"
            headers.update(sign_job_headers(PAYER, job_id, action))
    return headers


@schemathesis.auth(refresh_interval=None)
class MockbankrCredentials:
    """Every case's credentials, made per case (a payment or a signature is single-use)."""

    def get(self, case: schemathesis.Case, ctx: Any) -> dict[str, str] | None:
        return credentials(case) or None

    def set(self, case: schemathesis.Case, data: dict[str, str], ctx: Any) -> None:
        case.headers = {**(case.headers or {}), **data}


@schemathesis.hook
def before_call(context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    """Re-sign a signed job request for the job id it is sent with, and keep rules inert."""
    headers = case.headers or {}
    if any(name.lower().startswith("x-mockbankr-") for name in headers):
        # schemathesis picks header names out of the document's prose; a directive there
        # substitutes the answer, as a rule does (see the module docstring).
        case.headers = headers = {
            k: v for k, v in headers.items() if not k.lower().startswith("x-mockbankr-")
        }
    if case.operation.path in PROMPT_PATHS:
        # Every job the run creates stays unfinished whatever the run does to the clock
        # (POST /__mock/clock may advance it a year, or speed it up a million times): a
        # link or a pooled id that reaches it can still cancel or steer it. The statuses
        # a job ends in are reached by forcing outcomes (POST /__mock/jobs/{jobId}/outcome)
        # and, in-process, by the seeded jobs.
        case.headers = headers = {**headers, "X-Mockbankr-Outcome": "stuck"}
    signed = {"wallet-address", "x-signature", "x-message"}
    if headers.get("wallet-address") == PAYER.address and signed <= set(headers):
        # A stateful step fills jobId from a link after the credentials were made: sign again
        # what this hook signed. A negative case or a probe (a header left out, or another
        # address) is sent as it is.
        fresh = credentials(case)
        case.headers = {k: v for k, v in headers.items() if k not in signed}
        case.headers.update({k: v for k, v in fresh.items() if k in signed})
    # A payment made when the case was generated may have expired (or been spent) by the
    # time it is sent (on a loaded machine, or a replay): send a fresh one in its place.
    payment = next((k for k in headers if k.lower() == "x-payment"), None)
    if payment is not None and headers[payment] in _PAYMENTS:
        case.headers = {**(case.headers or {}), payment: credentials(case)["X-PAYMENT"]}
    _keep_our_key(case)
    if case.method.upper() == "POST" and case.operation.path == "/__mock/rules":
        body = case.body
        if isinstance(body, dict) and isinstance(body.get("match", {}), dict):
            match = body.get("match", {})
            if match.get("key") is None:  # absent or null: any key
                case.body = {**body, "match": {**match, "key": INERT_KEY}}


def _keep_our_key(case: schemathesis.Case) -> None:
    """Key management never takes :data:`KEY` away.

    A loaded keys document always gets the run's keys too (:data:`RUN_KEYS`): the spare
    ones first, :data:`KEY` last, on the run's account (a generated entry for one of
    them, with whatever flags, is replaced in a case meant to be accepted; a case meant
    to be refused keeps its own and is refused for it). So :data:`KEY` keeps its account,
    and the jobs it made stay its own. A revoke or rotate of :data:`KEY` names
    :data:`INERT_KEY` instead, a key the server never knows (404). Whatever the case's
    mode: a negative case may be negative for a header alone, and then its body is
    accepted as it is.
    """
    body, route = case.body, f"{case.method.upper()} {case.operation.path}"
    if not isinstance(body, dict):
        return
    if route == "PUT /__mock/keys":
        accounts, keys = body.get("accounts"), body.get("keys", [])
        if not isinstance(accounts, dict) or not isinstance(keys, list):
            return  # refused for its shape: nothing is loaded
        run_keys = _RUN_KEY_ENTRIES
        names = [k["key"] for k in run_keys]
        ours = [k for k in keys if isinstance(k, dict) and k.get("key") in names]
        negative = case.meta is not None and case.meta.generation.mode.is_negative
        if ours and negative:
            return
        case.body = {
            **body,
            "accounts": {**accounts, **RUN_KEYS["accounts"]},
            "keys": [*run_keys[:-1], *(k for k in keys if k not in ours), run_keys[-1]],
        }
    elif route.startswith("POST /__mock/keys/") and body.get("key") == KEY:
        case.body = {**body, "key": INERT_KEY}


#: Set by the live run to the server's URL: the server whose keys :func:`after_call` keeps.
LIVE_URL = "MOCKBANKR_SCHEMATHESIS_URL"


@schemathesis.hook
def after_call(context: Any, case: schemathesis.Case, response: Any) -> None:
    """After a reset of the live server, the run's keys document again.

    A reset returns to the ``--api-key`` keys, where :data:`KEY` is an account of its own;
    loaded, :data:`RUN_KEYS` puts it on :data:`RUN_ACCOUNT`: a job has one owner for the
    whole run, so an id taken from an earlier answer still reaches its job. (In-process,
    where no warning counts those, nothing is loaded.)
    """
    url = os.environ.get(LIVE_URL)
    route = f"{case.method.upper()} {case.operation.path}"
    if url and route == "POST /__mock/reset" and response.status_code == 200:
        httpx.put(f"{url}/__mock/keys", json=RUN_KEYS, timeout=10).raise_for_status()
