"""``GET /openapi.json``: the OpenAPI 3.1 contract of both Bankr flavours and the control plane.

The response schemas describe what the server really sends, for every status it can
send: the job status body field by field per status, the ``{error, message}`` error shape
(with the fixed ``error`` texts), the daily-limit 429 and the x402 402 challenge. The rule
schemas are generated from the :mod:`mockbankr.rules` structs, so the document and the
validator cannot drift apart; the rest is written out here, compactly.

Not described: what a fault rule or an ``X-Mockbankr-*`` directive substitutes (any status
and body, a hang, a dropped connection), Starlette's 405 for an undeclared method and 404
for an unknown path (both in the error shape). ``tests/test_openapi.py`` runs schemathesis
against the in-process app to keep every other answer honest.

Example::

    Route("/openapi.json", openapi_endpoint, methods=["GET"])
    openapi_document()["paths"]["/agent/job/{jobId}"]["get"]["responses"]["200"]
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from mockbankr.accounts import KEY_PATTERN, MAX_KEY_LENGTH
from mockbankr.clock import iso
from mockbankr.control import MAX_JOURNAL_LIMIT
from mockbankr.dashboard import ASSETS
from mockbankr.journal import FILTERS
from mockbankr.ledger import JOB_STATUSES
from mockbankr.rules import RULE_ID_PATTERN
from mockbankr.timing import load_timing
from mockbankr.validate import (
    ADVANCE,
    CLOCK_LIMIT,
    FINISH_IN,
    NOW,
    QUERY_LIMIT,
    QUERY_OFFSET,
    SPEED,
)
from mockbankr.verdicts import THRESHOLD_BOUNDS, Thresholds

__all__ = ["openapi_document", "openapi_endpoint"]

from mockbankr._openapi_schemas import (
    COUNT,
    STATUSES,
    STR,
    TRUE,
    Opt,
    Schema,
    array,
    bankr_schemas,
    control_schemas,
    enum_of,
    error_shape,
    job_schemas,
    obj,
    ref,
    struct_schemas,
)

# -- operations ----------------------------------------------------------------------------

#: A response: ``(description, schema)``, ``(description, *error texts)`` or a response object.
Answer = tuple[Any, ...] | Schema

AGENT, V2 = "API key flavour (@bankr/cli)", "x402 flavour (@bankr/sdk)"
CONTROL = "Control plane (loopback, or Authorization: Bearer <admin token>)"
#: A rule id (``rules.py`` refuses any other): a letter or digit, then up to 63 more of them
#: or ``.``, ``_``, ``~``, ``-``; so ``DELETE /__mock/rules/{ruleId}`` reaches every rule.
RULE_ID: Schema = {"type": "string", "pattern": RULE_ID_PATTERN}
#: A job id as a path segment: printable ASCII but ``/``, not a dot segment (``.``, ``..``),
#: so that any id the pattern allows reaches its route. Other ids answer 404 (or 400 blank).
JOB_ID: Schema = {
    "type": "string",
    "pattern": r"^[\x21-\x2e\x30-\x7e]*[\x21-\x2d\x30-\x7e][\x21-\x2e\x30-\x7e]*$",
}
#: Tag and security by path prefix, first match.
_AREAS: list[tuple[str, str, list[Schema]]] = [
    ("/openapi.json", "Meta", []),
    ("/_health", AGENT, [{}]),
    ("/agent/", AGENT, [{"apiKey": []}, {"bearerKey": []}]),
    ("/wallet/", AGENT, [{"apiKey": []}, {"bearerKey": []}]),
    ("/v2/prompt", V2, [{}, {"x402Payment": []}]),
    ("/v2/", V2, [{"walletAddress": [], "walletSignature": [], "signedMessage": []}]),
    ("/__mock/", CONTROL, [{}, {"adminToken": []}]),
]
_PATH_PARAMS = {
    "jobId": ("from the prompt response, e.g. job_8F3K2M9QZ7TB", JOB_ID),
    "ruleId": ("from POST /__mock/rules, e.g. r1", RULE_ID),
    # The page's files, by name: any other name is the documented 404.
    "asset": ("a file of the page", {"type": "string", "enum": sorted(ASSETS)}),
}
#: The links the stateful phase of a contract test (and a reader) follows: a created job can
#: be read, cancelled, inspected and steered; a created rule can be read and deleted; a
#: listed key can be revoked or rotated (a request body, not a path).
_JOB_LINKS = ("GET /__mock/jobs/{jobId}", "POST /__mock/jobs/{jobId}/outcome")
_REVOKE, _ROTATE = "POST /__mock/keys/revoke", "POST /__mock/keys/rotate"
_JOB_ID = {"jobId": "$response.body#/jobId"}
#: A link: ``(path parameters, request body or None, target routes)``.
_Link = tuple[dict[str, str], dict[str, str] | None, tuple[str, ...]]
_LINKS: dict[tuple[str, str], list[_Link]] = {
    ("POST /agent/prompt", "202"): [
        (_JOB_ID, None, ("GET /agent/job/{jobId}", "POST /agent/job/{jobId}/cancel", *_JOB_LINKS))
    ],
    ("POST /v2/prompt", "202"): [
        (_JOB_ID, None, ("GET /v2/job/{jobId}", "POST /v2/job/{jobId}/cancel", *_JOB_LINKS))
    ],
    ("POST /__mock/rules", "201"): [
        (
            {"ruleId": "$response.body#/id"},
            None,
            ("GET /__mock/rules/{ruleId}", "DELETE /__mock/rules/{ruleId}"),
        )
    ],
    # The first key listed can be revoked, the second rotated; a rotated key's successor
    # can be rotated again, or revoked.
    **{
        (route, "200"): [
            ({}, {"key": "$response.body#/keys/0/key"}, (_REVOKE,)),
            ({}, {"key": "$response.body#/keys/1/key"}, (_ROTATE,)),
        ]
        for route in ("GET /__mock/keys", "PUT /__mock/keys")
    },
    (_ROTATE, "200"): [({}, {"key": "$response.body#/key/key"}, (_ROTATE, _REVOKE))],
}
AUTH = "Authentication required"
KEY_401 = (
    "No key in X-API-Key or Authorization: Bearer, or a wrong, revoked or rotated one",
    "API key required",
    "Invalid API key",
)
KEY_403 = (
    "The key lacks agentApiEnabled, or the caller is outside its allowedIps",
    "Agent API access not enabled",
    "IP address not allowed",
)
IP_403 = ("The caller is outside the key's allowedIps", "IP address not allowed")
CONTROL_401 = ("An admin token is set and was not sent", AUTH)
CONTROL_403 = (
    "No admin token is set and the caller is not on loopback, or the Host is not a loopback"
    " name or the configured host (DNS rebinding); or, with or without a token, the Origin"
    " is a web page of another site",
    "Forbidden",
)
CONTROL_415 = (
    "Without an admin token, a POST with a body or a Content-Type, but not"
    " Content-Type: application/json (a POST with neither reaches the endpoint)",
    "Unsupported media type",
)
TOO_LARGE = ("A request body over 256 KiB, refused as it streams", "Payload too large")
NOT_FOUND = ("Unknown, someone else's, or vanished", "Job not found", "Not found")
NO_ROUTE = "Not found"  # a path parameter that is not one path segment reaches no route
TOO_LATE = ("The job finished already", "Job already completed", "Job already failed")
NO_ID = ("No job id", "Job ID required")
BAD_PROMPT = ("No usable prompt", "Invalid request", "Prompt too long")
BAD = ("Invalid body, parameter or value", "Invalid request")


def _json(description: str, schema: Schema, headers: Schema | None = None) -> Schema:
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    return {**out, "headers": headers} if headers else out


def _answer(spec: Answer) -> Schema:
    if isinstance(spec, dict):
        return spec
    if len(spec) == 2 and isinstance(spec[1], dict):
        return _json(spec[0], spec[1])
    return _json(spec[0], error_shape(*spec[1:]))


def _text(description: str, media: str) -> Schema:
    return {"description": description, "content": {media: {"schema": STR}}}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _op(
    summary: str,
    responses: dict[int, Answer],
    *,
    query: list[Schema] | None = None,
    body: Schema | None = None,
    example: Any = None,
    body_required: bool = True,
) -> Schema:
    """An operation. Its tag, security, path parameters, operationId and links come from
    its path (:func:`_paths`); every operation may also answer 500, a bug, and 503, a
    shared store (``--store redis://``) out of reach.
    """
    out: Schema = {"summary": summary, "parameters": query or []}
    if body is not None:
        media: Schema = {"schema": body}
        if example is not None:
            media["example"] = example
        out["requestBody"] = {"required": body_required, "content": {"application/json": media}}
    answers = {str(code): _answer(spec) for code, spec in responses.items()}
    out["responses"] = {
        **answers,
        "500": {"$ref": "#/components/responses/ServerError"},
        "503": {"$ref": "#/components/responses/StoreUnavailable"},
    }
    return out


def operation_id(route: str) -> str:
    """The operationId of ``"METHOD /path"``: the method and the path's words, camelCased.

    Example::

        operation_id("POST /agent/job/{jobId}/cancel") == "postAgentJobJobIdCancel"
    """
    method, path = route.split(" ")
    words = re.findall(r"[A-Za-z0-9]+", path) + (["slash"] if path.endswith("/") else [])
    return method.lower() + "".join(word[:1].upper() + word[1:] for word in words)


def _links(route: str, status: str) -> Schema:
    out: Schema = {}
    for parameters, body, targets in _LINKS.get((route, status), []):
        link: Schema = {"parameters": parameters} if parameters else {"requestBody": body}
        for target in targets:
            out[operation_id(target)] = {"operationId": operation_id(target), **link}
    return out


def _paths(operations: dict[str, Schema]) -> Schema:
    """Path items from ``{"METHOD /path": operation}``."""
    paths: Schema = {}
    for route, op in operations.items():
        method, path = route.split(" ")
        tag, security = next((t, s) for prefix, t, s in _AREAS if path.startswith(prefix))
        params = [
            {"name": name, "in": "path", "required": True, "description": text, "schema": schema}
            for name, (text, schema) in _PATH_PARAMS.items()
            if f"{{{name}}}" in path
        ]
        if tag == CONTROL:
            op["responses"].update({"401": _answer(CONTROL_401), "403": _answer(CONTROL_403)})
            # What RequestGuard refuses before the endpoint (a method the path does not
            # declare is the router's 405 first, whatever its content type).
            if "requestBody" in op or method == "POST":
                op["responses"]["413"] = _answer(TOO_LARGE)
            if method == "POST":
                op["responses"]["415"] = _answer(CONTROL_415)
        for status, answer in op["responses"].items():
            if links := _links(route, status):
                answer["links"] = links
        params += op.pop("parameters")
        op = {
            "tags": [tag],
            "operationId": operation_id(route),
            **op,
            "security": security,
            **({"parameters": params} if params else {}),
        }
        paths.setdefault(path, {})[method.lower()] = op
    missing = {(r, s) for r, s in _LINKS if r not in operations} | {
        t
        for links in _LINKS.values()
        for *_, targets in links
        for t in targets
        if t not in operations
    }
    assert not missing, f"links to or from undescribed operations: {missing}"
    return paths


def _bankr_operations() -> dict[str, Schema]:
    job = ("The job now", ref("JobStatus"))
    cancelled = ("Cancelled now, or already (idempotent)", ref("CancelledJob"))
    signed_401 = ("wallet-address, x-signature or x-message missing or wrong", AUTH)
    limited = error_shape(
        "Daily limit exceeded",
        resetAt={"type": "integer", "description": "unix milliseconds"},
        limit={"type": "integer", "minimum": 1},
        used=COUNT,
    )
    receipt = {
        "X-PAYMENT-RESPONSE": {
            "required": True,
            "description": "base64 JSON {success, transaction, network, payer}; never settled",
            "schema": STR,
        }
    }
    paid = _json("Paid (see the ledger) and accepted", ref("V2PromptAccepted"), receipt)
    prompt_403 = {
        "oneOf": [
            error_shape(*KEY_403[1:]),
            error_shape("subscription_required", remediation=array(STR, minItems=1)),
        ]
    }
    return {
        "GET /_health": _op(
            "Liveness; ignores any key and always answers 200 (the key check is /wallet/me)",
            {200: ("Up", obj(status={"const": "ok"}))},
        ),
        "GET /wallet/me": _op(
            "The key check: the key's account and wallet (any valid key, agent access or not)",
            {200: ("The account's wallet", ref("Me")), 401: KEY_401, 403: IP_403},
        ),
        "POST /agent/prompt": _op(
            "Submit a prompt; the job belongs to the key's account",
            {
                # The job, in a thread (allOf: Thread names what a prompt's threadId refers
                # to, which is what schemathesis's analysis needs to start a stateful
                # scenario with a prompt; see Thread).
                202: ("Accepted", {"allOf": [ref("Thread"), ref("PromptAccepted")]}),
                400: BAD_PROMPT,
                401: KEY_401,
                403: (
                    "No agent access, outside allowedIps, or an account without a plan",
                    prompt_403,
                ),
                429: ("The account's daily quota is spent", limited),
            },
            body=ref("PromptRequest"),
            example={"prompt": "What is the price of ETH?"},
        ),
        "GET /agent/me": _op(
            "Who am I (removed upstream; bankr login and whoami still call it)",
            {200: ("The account's wallet", ref("Me")), 401: KEY_401, 403: KEY_403},
        ),
        "GET /agent/job": _op(
            "No job id: the documented 400", {400: NO_ID, 401: KEY_401, 403: KEY_403}
        ),
        "GET /agent/job/": _op(
            "Empty job id: the documented 400", {400: NO_ID, 401: KEY_401, 403: KEY_403}
        ),
        "GET /agent/job/{jobId}": _op(
            "Poll a job",
            {200: job, 400: NO_ID, 401: KEY_401, 403: KEY_403, 404: NOT_FOUND},
        ),
        "POST /agent/job/{jobId}/cancel": _op(
            "Cancel a pending or processing job",
            {
                200: cancelled,
                400: (*TOO_LATE, NO_ID[1]),
                401: KEY_401,
                403: KEY_403,
                404: NOT_FOUND,
            },
        ),
        "POST /v2/prompt": _op(
            "Pay for a prompt with an x402 v1 X-PAYMENT; the job belongs to the payer",
            {
                202: paid,
                400: ("With an X-PAYMENT, no usable prompt (nothing is charged)", *BAD_PROMPT[1:]),
                402: ("No X-PAYMENT (whatever the body), or refused", ref("PaymentRequired")),
            },
            body=ref("V2PromptRequest"),
            example={"prompt": "What is the price of ETH?"},
        ),
        "GET /v2/job/{jobId}": _op(
            "Poll a job, with 'Get job status for {jobId}' signed by the payer",
            {200: job, 401: signed_401, 404: NOT_FOUND},
        ),
        "POST /v2/job/{jobId}/cancel": _op(
            "Cancel a job, with 'Cancel job {jobId}' signed by the payer",
            {200: cancelled, 400: TOO_LATE, 401: signed_401, 404: NOT_FOUND},
        ),
    }


def _control_operations() -> dict[str, Schema]:
    clock_change = obj(
        advance=Opt(
            {**ADVANCE.json_schema(), "description": f"seconds forward, to {iso(CLOCK_LIMIT)}"}
        ),
        speed=Opt({**SPEED.json_schema(), "description": "simulated s per wall s; 0 stops"}),
        now=Opt({**NOW.json_schema(), "description": "unix s, not backwards (virtual clock)"}),
    )
    outcome = obj(
        outcome=Opt(enum_of("completed", "failed")),
        error=Opt({"type": "string", "description": "the failure text (outcome failed)"}),
        finish_in=Opt({**FINISH_IN.json_schema(), "description": "seconds from now"}),
    )
    outcome["anyOf"] = [{"required": ["outcome"]}, {"required": ["finish_in"]}]
    outcome["if"] = {"required": ["error"]}  # an error text goes with outcome failed
    outcome["then"] = {"required": ["outcome"], "properties": {"outcome": {"const": "failed"}}}
    page = obj(
        jobs=array(ref("ControlJob")),
        total=COUNT,
        offset=COUNT,
        limit={"type": "integer", "minimum": 1, "maximum": 1000},
    )
    job_filters = [
        _query("status", STATUSES, "status now"),
        _query("owner", STR, "API key or wallet (key:/wallet: prefix optional)"),
        _query("category", STR, "timing category"),
        _query("offset", QUERY_OFFSET.json_schema(integer=True), "skip"),
        _query("limit", QUERY_LIMIT.json_schema(integer=True), "page size"),
        _query(
            "order",
            {**enum_of("oldest", "newest"), "default": "oldest"},
            "submission order (oldest first), or newest first: offset counts from the newest",
        ),
    ]
    described = {
        "path": "a glob",
        "owner": "a wallet, an API key's fingerprint, or the whole key",
        "state": "in-flight or done",
    }
    journal_filters = [_query(name, STR, described.get(name, "exact")) for name in FILTERS]
    journal_filters.append(
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_JOURNAL_LIMIT},
            "the newest (at most what the journal keeps)",
        )
    )
    journal = obj(
        entries=array(ref("JournalEntry")),
        size={"type": "integer", "minimum": 1, "description": "the most entries it keeps"},
        maxBytes={
            "type": "integer",
            "minimum": 1,
            "description": "about the most bytes it keeps (estimated from the entries' text)",
        },
        dropped={
            "type": "integer",
            "minimum": 0,
            "description": "entries dropped to stay within size and maxBytes since the last clear",
        },
    )
    empty = array({"type": "object"}, maxItems=0)
    missing = ("No such job", "Job not found", NO_ROUTE)
    no_rule = ("No such rule", "Rule not found", NO_ROUTE)
    finished = ("The job finished already", *(f"Job already {s}" for s in JOB_STATUSES[2:]))
    rules = obj(rules=array(ref("RuleListing")))
    key_text: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH}
    no_key = ("No active key with that value", "Key not found")
    return {
        "GET /__mock/clock": _op("Read the clock", {200: ("The clock", ref("Clock"))}),
        "POST /__mock/clock": _op(
            "Advance, set or speed up the clock",
            {
                200: ("The clock after the change", ref("Clock")),
                400: BAD,
                409: ("Past the clock's limit, backwards, or not this kind", "Clock conflict"),
            },
            body={**clock_change, "minProperties": 1},
            example={"advance": 60},
        ),
        "GET /__mock/jobs": _op(
            "Jobs in submission order (or newest first), filtered and paged",
            {200: ("One page", page), 400: BAD},
            query=job_filters,
        ),
        "GET /__mock/jobs/{jobId}": _op(
            "A job with its schedule and its status body now",
            {200: ("The job", ref("ControlJobDetail")), 404: missing},
        ),
        "POST /__mock/jobs/{jobId}/outcome": _op(
            "Force the outcome and/or finish time of an unfinished job",
            {200: ("The job now", ref("ControlJob")), 400: BAD, 404: missing, 409: finished},
            body=outcome,
            example={"outcome": "failed", "error": "Insufficient balance"},
        ),
        "GET /__mock/rules": _op("The rules, in order", {200: ("The rules", rules)}),
        "POST /__mock/rules": _op(
            "Append a fault rule",
            {
                201: ("The rule as stored", ref("RuleListing")),
                400: BAD,
                409: ("A rule with this id exists", "Rule exists"),
            },
            body=ref("Rule"),
            example={
                "match": {"method": "GET", "path": "/agent/job/*"},
                "action": {"respond": {"status": 503, "body": {"error": "Service unavailable"}}},
                "times": 2,
            },
        ),
        "GET /__mock/rules/{ruleId}": _op(
            "One rule, as stored", {200: ("The rule", ref("RuleListing")), 404: no_rule}
        ),
        "DELETE /__mock/rules": _op("Remove every rule", {200: ("None left", obj(rules=empty))}),
        "DELETE /__mock/rules/{ruleId}": _op(
            "Remove one rule",
            {200: ("Removed", obj(deleted=RULE_ID)), 404: no_rule},
        ),
        "GET /__mock/journal": _op(
            "Recent requests to the Bankr routes, oldest (by arrival) first, in flight too",
            {200: ("Matching entries", journal), 400: BAD},
            query=journal_filters,
        ),
        "DELETE /__mock/journal": _op("Forget the journal", {200: ("Empty", obj(entries=empty))}),
        "GET /__mock/verdicts": _op(
            "Grade each client's polling, timeout and retry behaviour from the journal",
            {200: ("A verdict per check per client", ref("Verdicts")), 400: BAD},
            query=_verdict_params(),
        ),
        "GET /__mock/ledger": _op(
            "What the x402 prompts would have cost", {200: ("Summary", ref("LedgerSummary"))}
        ),
        "POST /__mock/reset": _op(
            "Forget jobs, journal, ledger and limits; back to the start rules and keys;"
            ' with {"clock": true}, the clock back to its start time and speed too. No body'
            " at all (and no Content-Type) is {}: a bare POST, as curl -X POST sends it",
            {200: ("Reset", obj(reset=TRUE, rules=COUNT)), 400: BAD},
            body=obj(clock=Opt({"type": "boolean", "description": "reset the clock too"})),
            example={"clock": True},
            body_required=False,  # no body: {} (jobs, journal, rules and keys; not the clock)
        ),
        "GET /__mock/metrics": _op(
            "Prometheus metrics (text format 0.0.4) of the whole population: requests by"
            " route and status, jobs by category and status, USDC that would have been"
            " spent, fault firings by rule, submit-to-terminal simulated seconds",
            {
                200: _text("The metrics", "text/plain"),
                404: ("Started with --no-metrics", "Metrics off"),
            },
        ),
        "GET /__mock/ui": _op(
            "The live dashboard, a page for a browser (with an admin token, the page is"
            " served to anyone: its data needs the token, typed into the page)",
            {200: _text("The page", "text/html")},
        ),
        "GET /__mock/ui/{asset}": _op(
            "A file of the dashboard page",
            {
                200: {
                    "description": "The script or the style sheet",
                    "content": {m: {"schema": STR} for m in ("text/javascript", "text/css")},
                },
                404: ("No such file", "Not found"),
            },
        ),
        "GET /__mock/keys": _op("The accounts and keys now", {200: ("Keys", ref("KeyBook"))}),
        "PUT /__mock/keys": _op(
            "Load a keys document (the --keys TOML file's keys, as JSON); a key's account"
            " must be listed under accounts, an allowed IP is an address or a CIDR network",
            {200: ("The keys now", ref("KeyBook")), 400: BAD},
            body=ref("KeysDocument"),
        ),
        "POST /__mock/keys/revoke": _op(
            "Revoke a key: 401 Invalid API key from its next request on",
            {200: ("The revoked key", obj(key=ref("KeyListing"))), 400: BAD, 404: no_key},
            body=obj(key=key_text),
        ),
        "POST /__mock/keys/rotate": _op(
            "Replace a key by a new one with the same account, flags and limit",
            {
                200: ("The new key", obj(key=ref("KeyListing"), replaced=key_text)),
                400: BAD,
                404: no_key,
                409: ("newKey is a key already", "Key exists"),
            },
            # The new key is a key's grammar (printable ASCII, no spaces); the old one is
            # looked up as it comes (any other string is a 404).
            body=obj(key=key_text, newKey=Opt({"type": "string", "pattern": KEY_PATTERN})),
        ),
    }


def _verdict_params() -> list[Schema]:
    params = [
        _query("owner", STR, "one client: an API key (or its fingerprint) or a wallet"),
        _query(
            "since",
            {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,6})?$"},
            "only requests from then on: unix seconds (or, not described here, ISO-8601)",
        ),
    ]
    for name, (low, high, integral) in THRESHOLD_BOUNDS.items():
        kind = "integer" if integral else "number"
        default = getattr(Thresholds(), name)
        schema = {"type": kind, "minimum": low, "maximum": high, "default": default}
        params.append(_query(name, schema, "a threshold (see mockbankr.grading)"))
    price = {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,6})?$", "default": "0.10"}
    params.append(_query("price_usdc", price, "what a wasted job costs (default: the price)"))
    return params


_DESCRIPTION = """\
A local, deterministic, time-controllable stand-in for the Bankr agent API.

`/agent/*` and `/wallet/me` take the API key in `X-API-Key` or `Authorization: Bearer` (a job
belongs to the key's account; without a keys file each key is an account of its own). `/v2/*`
takes an x402 v1 `X-PAYMENT` per prompt (never settled) and an EIP-191 signature of the payer
per job read.
`/__mock/*` steers the simulator.

Every error body is `{"error", "message"}`, with the documented extra fields on a 429 and the
x402 challenge on a 402. A method a path does not declare answers 405 with `Allow`, an unknown
path 404, in the same shape.

Not described: what fault rules (`POST /__mock/rules`) or the `X-Mockbankr-Outcome`,
`X-Mockbankr-Latency` and `X-Mockbankr-Fault` request headers substitute on the Bankr routes:
any status and body, a delay, a hang (504), a dropped connection or a truncated body.
"""


def _header(name: str, description: str) -> Schema:
    return {"type": "apiKey", "in": "header", "name": name, "description": description}


@functools.cache
def _build(categories: tuple[str, ...]) -> Schema:
    schemas = {
        **job_schemas(),
        **struct_schemas(categories),
        **control_schemas(),
        **bankr_schemas(),
    }
    this = {"type": "object", "required": ["openapi"], "properties": {"openapi": STR}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "mockbankr", "version": "0.1.0", "description": _DESCRIPTION},
        "tags": [{"name": tag} for tag in (AGENT, V2, CONTROL, "Meta")],
        "paths": _paths(
            {
                "GET /openapi.json": _op("This document", {200: ("OpenAPI 3.1", this)}),
                **_bankr_operations(),
                **_control_operations(),
            }
        ),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": {
                "ServerError": _json("A mockbankr bug (logged); please report it", error_shape()),
                "StoreUnavailable": _json(
                    "With --store redis://, the store cannot be reached: nothing changed; retry",
                    error_shape("Service unavailable"),
                    {"Retry-After": {"required": True, "schema": {"type": "string"}}},
                ),
            },
            "securitySchemes": {
                "apiKey": _header("X-API-Key", "bk_..."),
                "bearerKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the API key as Authorization: Bearer bk_... (docs/wire.md 1.8)",
                },
                "x402Payment": _header("X-PAYMENT", "base64 JSON of an x402 v1 payment"),
                "walletAddress": _header("wallet-address", "the payer"),
                "walletSignature": _header("x-signature", "EIP-191 signature of x-message"),
                "signedMessage": _header("x-message", "e.g. 'Cancel job {jobId}'"),
                "adminToken": {"type": "http", "scheme": "bearer", "description": "--admin-token"},
            },
        },
    }


@functools.cache
def _encoded(categories: tuple[str, ...]) -> bytes:
    return msgspec.json.encode(_build(categories))


@functools.cache
def _default_categories() -> tuple[str, ...]:
    return tuple(load_timing().categories)


def openapi_document(categories: Iterable[str] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document: a fresh copy of the one built on first use.

    ``categories`` are the timing categories a rule may name (default: the built-in
    table's); a server describes its own table's.

    Example::

        doc = openapi_document()
        doc["components"]["securitySchemes"]["apiKey"]["name"]  # "X-API-Key"
    """
    names = _default_categories() if categories is None else tuple(categories)
    return copy.deepcopy(_build(names))


async def openapi_endpoint(request: Request) -> Response:
    """``GET /openapi.json``: the document, encoded once.

    Example::

        Route("/openapi.json", openapi_endpoint, methods=["GET"])
    """
    simulator = getattr(request.app.state, "simulator", None)
    categories = _default_categories() if simulator is None else tuple(simulator.table.categories)
    return Response(_encoded(categories), media_type="application/json")
