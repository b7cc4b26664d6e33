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
headers (schemathesis finds their names in the document's description) are not sent, and
key management never revokes, rotates or drops :data:`KEY` (see :func:`_keep_our_key`).
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

import schemathesis
from _x402_signing import make_payment_header, sign_job_headers
from eth_account import Account
from eth_account.signers.local import LocalAccount

from mockbankr.money import PaymentTerms
from mockbankr.x402 import challenge_body

__all__ = ["INERT_KEY", "KEY", "PAYER", "TOKEN", "credentials"]

KEY = "bk_schemathesis"
TOKEN = "admin-token-for-schemathesis"
INERT_KEY = "bk_inert_no_request_sends_this"
PAYER: LocalAccount = Account.from_key("0x" + "5c" * 32)

#: What the server asks for by default (the run uses default payment terms).
_REQUIREMENTS = challenge_body(PaymentTerms(), "http://127.0.0.1/v2/prompt")["accepts"][0]
#: Payment nonces: a counter, so that no two payments of one run share one.
_NONCES = itertools.count(int(time.time() * 1000) << 64)
_HEADER_SAFE = re.compile(r"[!-~]+")


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
    """Key management never takes :data:`KEY` away: a loaded keys document gets it too (on
    an account of its own, on the Club plan) and a revoke or rotate of it names another."""
    body, route = case.body, f"{case.method.upper()} {case.operation.path}"
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if not isinstance(body, dict) or negative:  # a refused body changes nothing: left as is
        return
    keys = body.get("keys", [])
    ours = isinstance(keys, list) and any(isinstance(k, dict) and k.get("key") == KEY for k in keys)
    shaped = isinstance(body.get("accounts"), dict) and isinstance(keys, list)
    if route == "PUT /__mock/keys" and shaped and not ours:
        case.body = {
            **body,
            "accounts": {**body["accounts"], "schemathesis-run": {"plan": "club"}},
            "keys": [*keys, {"key": KEY, "account": "schemathesis-run"}],
        }
    elif route.startswith("POST /__mock/keys/") and body.get("key") == KEY:
        case.body = {**body, "key": INERT_KEY}
