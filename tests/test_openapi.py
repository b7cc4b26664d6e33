"""``GET /openapi.json``: a valid OpenAPI 3.1 document of exactly the routes table, and honest.

The in-process schemathesis run drives every operation against an app seeded with jobs in
every status (both flavours), a ledger, a journal and a rule. Most requests carry valid
credentials (the API key, the admin token, a real x402 payment, the payer's signature) and a
known job id, so the answers past 401 and 404 are checked too; the rest keep what
schemathesis generated. Every answer must have a documented status, content type, headers
and body, and none may be a 5xx.
"""

from __future__ import annotations

import dataclasses
import random
import re
import zlib
from typing import Any, Literal

import httpx
import hypothesis
import jsonschema_rs
import pytest
import schemathesis
from _x402_signing import make_payment_header, sign_job_headers
from eth_account import Account
from eth_account.signers.local import LocalAccount
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from starlette.applications import Starlette
from starlette.routing import Route

from mockbankr import MemoryStore, Settings, VirtualClock, create_app
from mockbankr.openapi import openapi_document, openapi_endpoint
from mockbankr.testing import SyncClockTransport

KEY = "bk_test"
TOKEN = "admin-token-for-tests"
PAYER: LocalAccount = Account.from_key("0x" + "a1" * 32)
STRANGER: LocalAccount = Account.from_key("0x" + "b2" * 32)
BASE_URL = "http://mockbankr.local"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
]
#: Examples per operation in the fuzzing phase; the coverage phase adds its own.
MAX_EXAMPLES = 50


def build_app(**settings: Any) -> tuple[Starlette, VirtualClock]:
    """The app, with ``/openapi.json`` mounted if app.py does not route it (yet)."""
    clock = VirtualClock()
    app = create_app(
        Settings(seed=7, **settings), clock=clock, rng=random.Random(7), store=MemoryStore()
    )
    if not any(getattr(route, "path", None) == "/openapi.json" for route in app.routes):
        app.router.routes.insert(0, Route("/openapi.json", openapi_endpoint, methods=["GET"]))
    return app, clock


def loopback(app: Starlette, clock: VirtualClock) -> httpx.Client:
    transport = SyncClockTransport(app, clock)
    headers = {"X-API-Key": KEY, "Authorization": f"Bearer {TOKEN}"}
    return httpx.Client(transport=transport, base_url=BASE_URL, headers=headers)


@dataclasses.dataclass
class Seeded:
    app: Starlette
    clock: VirtualClock
    agent_jobs: list[str]
    v2_jobs: list[str]
    rule_ids: list[str]
    requirements: dict[str, Any]
    payments: int = 0

    def pay(self) -> str:
        """An X-PAYMENT header for one prompt, with a fresh nonce (not random: replayable)."""
        self.payments += 1
        nonce = self.payments.to_bytes(32, "big")
        return make_payment_header(PAYER, self.requirements, now=self.clock.now(), nonce=nonce)


def seeded_app() -> Seeded:
    """An app holding jobs in every status, paid x402 jobs, a ledger, a journal and a rule.

    The daily limit leaves a few prompts, so the run meets both 202 and 429.
    """
    app, clock = build_app(api_keys=frozenset({KEY}), admin_token=TOKEN, daily_limit=12)
    with loopback(app, clock) as http:

        def shaped(outcome: str | None = None, latency: float | None = None) -> dict[str, str]:
            out = {"X-Mockbankr-Outcome": outcome} if outcome else {}
            return out | ({"X-Mockbankr-Latency": str(latency)} if latency else {})

        def prompt(text: str, **shape: Any) -> str:
            response = http.post("/agent/prompt", json={"prompt": text}, headers=shaped(**shape))
            assert response.status_code == 202, response.text
            job_id: str = response.json()["jobId"]
            return job_id

        challenge = http.post("/v2/prompt", json={"prompt": "?"})
        assert challenge.status_code == 402, challenge.text
        seeded = Seeded(app, clock, [], [], [], challenge.json()["accepts"][0])

        def paid(text: str, **shape: Any) -> str:
            response = http.post(
                "/v2/prompt",
                json={"prompt": text},
                headers={"X-PAYMENT": seeded.pay(), **shaped(**shape)},
            )
            assert response.status_code == 202, response.text
            job_id: str = response.json()["jobId"]
            return job_id

        agent = [
            prompt("Swap 10 USDC for ETH", outcome="completed", latency=5),
            prompt("Research ETH sentiment", outcome="failed", latency=5),
            prompt("What is the price of ETH?", latency=500),  # cancelled below
            prompt("Check my balance", outcome="stuck"),
            prompt("Gone at once", outcome="vanish"),
            prompt("Check my portfolio", outcome="regress", latency=500),
        ]
        seeded.v2_jobs += [paid("What is the price of ETH?", latency=5)]
        seeded.v2_jobs += [paid("What is the price of ETH?"), paid("Swap 1 USDC", latency=500)]
        clock.advance(60)
        assert http.post(f"/agent/job/{agent[2]}/cancel").status_code == 200
        agent.append(prompt("What is ETH worth?", latency=500))
        clock.advance(3)  # that one is processing now
        agent.append(prompt("What is SOL worth?", latency=500))  # and this one pending
        rule = http.post(
            "/__mock/rules",
            json={"match": {"path": "/nowhere/*"}, "action": {"drop": {}}, "times": 3},
        )
        assert rule.status_code == 201, rule.text
    seeded.agent_jobs, seeded.rule_ids = agent, [rule.json()["id"], "r404"]
    return seeded


def _choose(case: schemathesis.Case, salt: str, options: list[Any]) -> Any:
    """A choice that is a function of the generated case (generation is derandomized)."""
    seed = repr((salt, case.path_parameters, case.query, case.body, case.headers)).encode()
    return options[zlib.crc32(seed) % len(options)]


def credentials(case: schemathesis.Case, seeded: Seeded) -> dict[str, str]:
    """Point most cases at known ids; valid credentials for most, to send with the case.

    Passed to ``case.call(headers=...)``, they are sent even where schemathesis drops a
    security header it generated on purpose (its negative cases).
    """
    path, params = case.operation.path, case.path_parameters
    valid = _choose(case, "auth", [True, True, True, False])
    signer = _choose(case, "signer", [PAYER, PAYER, STRANGER])
    if params and "jobId" in params:
        known = seeded.v2_jobs if path.startswith("/v2/") else seeded.agent_jobs
        params["jobId"] = _choose(case, "job", [*known, *known, params["jobId"]])
    if params and "ruleId" in params:
        params["ruleId"] = _choose(case, "rule", [*seeded.rule_ids, params["ruleId"]])
    if not valid:
        return {}
    if path.startswith("/__mock/"):
        return {"Authorization": f"Bearer {TOKEN}"}
    if path.startswith("/agent/") or path == "/_health":
        return {"X-API-Key": KEY}
    if path == "/v2/prompt":
        return {"X-PAYMENT": seeded.pay()}
    if params and re.fullmatch(r"[!-~]+", params["jobId"]):  # a header-safe /v2/job id
        action: Literal["status", "cancel"] = "cancel" if path.endswith("/cancel") else "status"
        return sign_job_headers(signer, params["jobId"], action)
    return {}


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261129,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    }
)
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)


@pytest.fixture
def seeded() -> Seeded:
    return seeded_app()


# One seeded app per operation, shared by its examples: that is the point of the fixture.
@schema.parametrize()
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_every_answer_conforms_to_the_document(case: schemathesis.Case, seeded: Seeded) -> None:
    headers = credentials(case, seeded)
    response = case.call(app=seeded.app, headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)


def test_the_served_document_is_valid_openapi_3_1() -> None:
    app, clock = build_app()
    with loopback(app, clock) as http:
        response = http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == openapi_document()
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    loaded.validate()  # against the OpenAPI 3.1 meta-schema
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert {op.label for op in operations} >= {"GET /agent/job/{jobId}", "POST /__mock/rules"}


def test_every_component_is_a_valid_json_schema() -> None:
    for name, component in openapi_document()["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(component), name


def test_every_route_is_described_and_nothing_else() -> None:
    app, _ = build_app()
    routed = {
        (method, re.sub(r"\{[^}]*\}", "{}", route.path))
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    described = {
        (method.upper(), re.sub(r"\{[^}]*\}", "{}", path))
        for path, item in openapi_document()["paths"].items()
        for method in item
    }
    assert routed == described


def test_each_path_parameter_is_declared_once_and_named_as_in_the_path() -> None:
    for path, item in openapi_document()["paths"].items():
        for operation in item.values():
            declared = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            assert declared == re.findall(r"\{([^}]*)\}", path), path


def test_the_document_is_handed_out_as_copies() -> None:
    first = openapi_document()
    first["paths"].clear()
    assert openapi_document()["paths"]
    assert openapi_document() == openapi_document()


@pytest.mark.parametrize("admin_token", [None, TOKEN], ids=["loopback-only", "token"])
def test_a_refused_control_call_conforms(admin_token: str | None) -> None:
    """schemathesis's ASGI client is not on loopback: 403 without a token, 401 with one.

    With a token, the dashboard's own files are the exception: they hold no data, and a
    browser cannot send the token before the page that asks for it has loaded."""
    app, _ = build_app(admin_token=admin_token)
    refused = 403 if admin_token is None else 401
    paths = openapi_document()["paths"]
    operations = [result.ok() for result in schema.get_all_operations()]
    control = [op for op in operations if op.path.startswith("/__mock/")]
    assert len(control) == sum(len(item) for path, item in paths.items() if "/__mock/" in path)
    for operation in control:
        kwargs: dict[str, Any] = {}
        if "{" in operation.path:
            names = re.findall(r"\{([^}]*)\}", operation.path)
            kwargs["path_parameters"] = dict.fromkeys(names, "x")
        if "requestBody" in paths[operation.path][operation.method.lower()]:
            kwargs["body"] = {}
        case = operation.Case(**kwargs)
        response = case.call(app=app)
        page = operation.path.startswith("/__mock/ui")
        expected = 200 if page and admin_token is not None else refused
        if operation.path == "/__mock/ui/{asset}" and admin_token is not None:
            expected = 404  # served unguarded, but "x" is no file of the page
        assert response.status_code == expected, operation.label
        case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(
    ("route", "params", "headers", "status"),
    [
        ("GET /wallet/me", {}, {"X-API-Key": "bk_unknown"}, 401),
        ("GET /wallet/me", {}, {"Authorization": "Bearer bk_unknown"}, 401),
        ("GET /agent/job/{jobId}", {"jobId": " "}, {"X-API-Key": KEY}, 400),
    ],
)
def test_answers_the_run_does_not_reach_conform(
    route: str, params: dict[str, str], headers: dict[str, str], status: int
) -> None:
    app, _ = build_app(api_keys=frozenset({KEY}))
    method, path = route.split(" ")
    case = schema[path][method].Case(**({"path_parameters": params} if params else {}))
    response = case.call(app=app, headers=headers)
    assert response.status_code == status
    case.validate_response(response, checks=CHECKS, headers=headers)


def test_operation_ids_are_unique_and_every_link_reaches_an_operation() -> None:
    document = openapi_document()
    operations = {
        op["operationId"]: (path, op)
        for path, item in document["paths"].items()
        for op in item.values()
    }
    assert len(operations) == sum(len(item) for item in document["paths"].values())
    links = [
        link
        for _, op in operations.values()
        for answer in op["responses"].values()
        for link in answer.get("links", {}).values()
    ]
    assert len(links) >= 6  # created jobs (both flavours) and rules
    for link in links:
        path, target = operations[link["operationId"]]
        wanted = set(re.findall(r"\{([^}]*)\}", path))
        if wanted:  # a path parameter: each one, from the answer
            assert set(link["parameters"]) == wanted
        else:  # or a request body whose fields the target takes (a key to revoke)
            body = target["requestBody"]["content"]["application/json"]["schema"]
            assert set(link["requestBody"]) <= set(body["properties"])
            assert set(link["requestBody"]) >= set(body["required"])


def test_the_served_document_names_the_servers_own_timing_categories() -> None:
    app, clock = build_app()
    with loopback(app, clock) as http:
        served = http.get("/openapi.json").json()
        unknown = http.post(
            "/__mock/rules", json={"match": {"category": "nope"}, "action": {"drop": {}}}
        )
    categories = list(app.state.simulator.table.categories)
    match = served["components"]["schemas"]["Match"]["properties"]["category"]
    assert {"type": "string", "enum": categories} in match["anyOf"]
    assert "nope" not in categories
    assert unknown.status_code == 400
    assert openapi_document(["a", "b"])["components"]["schemas"]["JobShape"]["properties"][
        "category"
    ]["anyOf"][0]["enum"] == ["a", "b"]
