"""``GET /openapi.json``: a valid OpenAPI 3.1 document of exactly the routes table.

Whether every answer conforms to it is schemathesis's job (``tests/test_schemathesis.py``,
live and in-process); here: the document itself, and the answers those runs cannot reach.
"""

from __future__ import annotations

import random
import re
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
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
BASE_URL = "http://mockbankr.local"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
]


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


schema = schemathesis.openapi.from_dict(openapi_document())


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
    """schemathesis's ASGI client is not on loopback: 403 without a token, 401 with one."""
    app, _ = build_app(admin_token=admin_token)
    expected = 403 if admin_token is None else 401
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
        path, _ = operations[link["operationId"]]
        assert set(link["parameters"]) == set(re.findall(r"\{([^}]*)\}", path))


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
