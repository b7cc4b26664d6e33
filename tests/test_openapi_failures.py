"""The failures issue 12 listed, one test each: the server and the document now agree.

Each test sends the request to the in-process app, checks the answer against the document
(documented status, body schema, headers) and asks the document whether it allows the
request: an accepted request must be one the document allows, a refused one (400) one it
does not, and a request refused for the state it meets (404, 409, the wire's own 400s) is
allowed by the document and answered as the document says.
"""

from __future__ import annotations

import random
from typing import Any

import _schemathesis_hooks as hooks
import jsonschema_rs
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette

from mockbankr import MemoryStore, RealClock, Settings, VirtualClock, create_app
from mockbankr.clock import Clock
from mockbankr.openapi import openapi_document

DOCUMENT = openapi_document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
_ABSENT = object()


def _app(clock: Clock | None = None) -> Starlette:
    return create_app(
        Settings(seed=5, api_keys=frozenset({hooks.KEY}), admin_token=hooks.TOKEN),
        clock=clock or VirtualClock(),
        rng=random.Random(5),
        store=MemoryStore(),
        payment_clock=RealClock(),
    )


def allowed(method: str, path: str, body: Any) -> bool:
    """Whether the document allows this request body for the operation."""
    content = DOCUMENT["paths"][path][method.lower()]["requestBody"]["content"]
    schema = {**content["application/json"]["schema"], "components": DOCUMENT["components"]}
    return bool(jsonschema_rs.Draft202012Validator(schema).is_valid(body))


def send(
    app: Starlette, route: str, *, body: Any = _ABSENT, signed: bool = True, **params: str
) -> Any:
    """Send a request with valid credentials; check the answer against the document."""
    method, path = route.split(" ")
    kwargs: dict[str, Any] = {"path_parameters": params} if params else {}
    if body is not _ABSENT:
        kwargs["body"] = body
    case = SCHEMA[path][method].Case(**kwargs)
    headers = hooks.credentials(case) if signed else {}
    response = case.call(app=app, headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)
    return response


def _prompt(app: Starlette, route: str, latency: float, outcome: str | None = None) -> str:
    shape = {"X-Mockbankr-Latency": str(latency)} | (
        {"X-Mockbankr-Outcome": outcome} if outcome else {}
    )
    method, path = route.split(" ")
    case = SCHEMA[path][method].Case(body={"prompt": "Swap 1 USDC for ETH"})
    response = case.call(app=app, headers=hooks.credentials(case) | shape)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


# -- "Rules with an empty id are accepted and can never be deleted" ---------------------------


@pytest.mark.parametrize("rule_id", ["", "a/b", ".", "..", "-r", "r 1", "é", "x" * 65])
def test_rules_with_an_empty_or_unroutable_id_are_refused(rule_id: str) -> None:
    app = _app()
    body = {"id": rule_id, "action": {"drop": {}}}
    assert not allowed("POST", "/__mock/rules", body)
    assert send(app, "POST /__mock/rules", body=body).status_code == 400
    assert send(app, "GET /__mock/rules").json() == {"rules": []}


@pytest.mark.parametrize("rule_id", ["r7", "slow-polls", "A.b_c~9", "x" * 64])
def test_every_rule_id_the_document_allows_can_be_read_and_deleted(rule_id: str) -> None:
    app = _app()
    body = {"id": rule_id, "match": {"key": hooks.INERT_KEY}, "action": {"drop": {}}}
    assert allowed("POST", "/__mock/rules", body)
    assert send(app, "POST /__mock/rules", body=body).status_code == 201
    assert send(app, "GET /__mock/rules/{ruleId}", ruleId=rule_id).json()["id"] == rule_id
    deleted = send(app, "DELETE /__mock/rules/{ruleId}", ruleId=rule_id)
    assert deleted.json() == {"deleted": rule_id}
    assert send(app, "GET /__mock/rules/{ruleId}", ruleId=rule_id).status_code == 404


# -- "Nonsense accepted where the document says otherwise" ------------------------------------


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("POST /agent/prompt", {"prompt": "hi", "threadId": None}),
        ("POST /v2/prompt", {"prompt": "hi", "walletAddress": None, "xmtp": None}),
    ],
)
def test_a_null_thread_id_is_accepted_as_no_thread(route: str, body: dict[str, Any]) -> None:
    app = _app()
    method, path = route.split(" ")
    assert allowed(method, path, body)
    accepted = send(app, route, body=body)
    assert accepted.status_code == 202
    if "threadId" in accepted.json():  # a new thread, like a prompt without the key
        assert accepted.json()["threadId"].startswith("thr_")


# -- "Valid-by-the-document requests refused" -------------------------------------------------


@pytest.mark.parametrize("flavour", ["agent", "v2"])
@pytest.mark.parametrize("outcome", ["completed", "failed"])
def test_cancelling_a_finished_job_answers_the_documented_400(flavour: str, outcome: str) -> None:
    clock = VirtualClock()
    app = _app(clock)
    job_id = _prompt(app, f"POST /{flavour}/prompt", latency=5, outcome=outcome)
    clock.advance(10)
    answer = send(app, f"POST /{flavour}/job/{{jobId}}/cancel", jobId=job_id)
    assert answer.status_code == 400
    assert answer.json()["error"] == f"Job already {outcome}"
    assert send(app, f"GET /{flavour}/job/{{jobId}}", jobId=job_id).json()["status"] == outcome


@pytest.mark.parametrize("path", ["/agent/job", "/agent/job/"])
def test_get_agent_job_without_an_id_answers_the_documented_400(path: str) -> None:
    answer = send(_app(), f"GET {path}")
    assert answer.status_code == 400
    assert answer.json() == {"error": "Job ID required", "message": "Please provide a job ID"}
    assert send(_app(), f"GET {path}", signed=False).status_code == 401


def test_v2_prompt_without_a_body_answers_the_documented_402_and_with_a_payment_400() -> None:
    app = _app()
    challenge = send(app, "POST /v2/prompt", signed=False)
    assert challenge.status_code == 402
    assert challenge.json()["error"] == "X-PAYMENT header is required"
    paid_without_prompt = send(app, "POST /v2/prompt")
    assert paid_without_prompt.status_code == 400
    assert send(app, "GET /__mock/ledger").json()["count"] == 0  # nothing was charged


# -- "Bodies that do not match their schemas" -------------------------------------------------


@pytest.mark.parametrize("route", ["GET /__mock/rules/{ruleId}", "DELETE /__mock/rules/{ruleId}"])
def test_an_unknown_rules_404_body_is_the_documented_one(route: str) -> None:
    answer = send(_app(), route, ruleId="r404")
    assert answer.status_code == 404
    assert answer.json() == {"error": "Rule not found", "message": "No rule with id r404"}


def test_a_rule_id_that_is_taken_is_the_documented_409_not_a_400() -> None:
    app = _app()
    body = {"id": "slow", "match": {"key": hooks.INERT_KEY}, "action": {"drop": {}}}
    assert send(app, "POST /__mock/rules", body=body).status_code == 201
    again = send(app, "POST /__mock/rules", body={**body, "action": {"malformed": {}}})
    assert again.status_code == 409
    assert again.json()["error"] == "Rule exists"
    assert send(app, "GET /__mock/rules/{ruleId}", ruleId="slow").json()["action"] == {"drop": {}}
