"""The routes table: every route answers in the wire error shape, never with a 5xx."""

from __future__ import annotations

import random

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from mockbankr import FixtureError, MemoryStore, Settings, VirtualClock, create_app, parse_rule


def routes(app: Starlette) -> list[Route]:
    return [route for route in app.routes if isinstance(route, Route)]


def test_no_parameterised_route_shadows_a_later_fixed_path(app: Starlette) -> None:
    table = routes(app)
    for i, route in enumerate(table):
        for later in table[i + 1 :]:
            if "{" not in later.path:
                assert route.path_regex.match(later.path) is None, (route.path, later.path)


def test_status_polls_are_the_first_routes(app: Starlette) -> None:
    assert [route.path for route in routes(app)[:2]] == ["/agent/job/{job_id}", "/v2/job/{job_id}"]


@pytest.mark.parametrize("with_key", [False, True])
def test_every_route_and_method_answers_without_a_server_error(
    app: Starlette, http: httpx.Client, with_key: bool
) -> None:
    headers = {"Content-Type": "application/json"}
    if not with_key:
        headers["X-API-Key"] = ""
    allowed_by_path: dict[str, set[str]] = {}
    for route in routes(app):
        allowed_by_path.setdefault(route.path, set()).update(route.methods or set())
    for route_path, allowed_methods in allowed_by_path.items():
        path = route_path.replace("{job_id}", "job_UNKNOWN").replace("{rule_id}", "r404")
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"]:
            response = http.request(method, path, headers=headers, content=b"{}")
            assert response.status_code < 500, (method, path)
            if response.status_code >= 400:
                assert set(response.json()) >= {"error", "message"}, (method, path)
            allowed = method in allowed_methods
            assert (response.status_code == 405) is (not allowed), (method, path)


def test_create_app_builds_independent_apps() -> None:
    clock = VirtualClock()
    a = create_app(Settings(seed=1), clock=clock, rng=random.Random(1), store=MemoryStore())
    b = create_app(Settings(seed=1), clock=clock, rng=random.Random(1), store=MemoryStore())
    assert a.state.simulator is not b.state.simulator
    assert a.state.simulator.store is not b.state.simulator.store


def test_log_requests_writes_one_line_per_request(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    from mockbankr.testing import SyncClockTransport

    app = create_app(
        Settings(log_requests=True), clock=clock, rng=random.Random(0), store=MemoryStore()
    )
    with httpx.Client(transport=SyncClockTransport(app, clock), base_url="http://m") as http:
        caplog.set_level("INFO", logger="mockbankr")
        http.get("/_health")
        http.get("/nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "mockbankr"]
    assert len(lines) == 2
    assert "method=GET path=/_health status=200" in lines[0]
    assert "path=/nope status=404" in lines[1]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/__mock/rules", {"GET", "HEAD", "POST", "DELETE"}),
        ("/__mock/clock", {"GET", "HEAD", "POST"}),
        ("/__mock/journal", {"GET", "HEAD", "DELETE"}),
        ("/agent/prompt", {"POST"}),
    ],
)
def test_a_405_allows_every_method_of_the_path(
    http: httpx.Client, path: str, allowed: set[str]
) -> None:
    response = http.request("PATCH", path)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed


@pytest.mark.parametrize("path", ["/_health/", "/__mock/jobs/", "/agent/prompt/"])
def test_a_trailing_slash_is_a_404_in_the_wire_shape(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "Not found"


def test_an_oversized_control_body_is_a_413(http: httpx.Client) -> None:
    json_type = {"Content-Type": "application/json"}
    response = http.post("/__mock/rules", content=b" " * (300 * 1024) + b"{}", headers=json_type)
    assert response.status_code == 413
    assert response.json()["message"] == "Request bodies are limited to 262144 bytes"
    empty = http.post("/__mock/rules", content=b"", headers=json_type)
    assert empty.json()["message"].endswith("(the body is empty)")


def test_rules_with_an_unknown_category_refuse_to_build_an_app(clock: VirtualClock) -> None:
    rule = parse_rule({"match": {"category": "teleport"}, "action": {"drop": {}}})
    with pytest.raises(FixtureError) as info:
        create_app(Settings(rules=(rule,)), clock=clock, rng=random.Random(1), store=MemoryStore())
    assert (info.value.path, info.value.key) == ("Settings.rules", "rules[0].match.category")
