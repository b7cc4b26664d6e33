"""The control plane and the fault actions, over HTTP in-process on virtual time."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mockbankr import JobStore, MemoryStore, Settings, VirtualClock, create_app
from mockbankr.journal import key_fingerprint
from mockbankr.rules import parse_rule
from mockbankr.testing import SyncClockTransport
from tests.conftest import STORES

PRICE = "What is the price of ETH?"


def client(
    app: Starlette, clock: VirtualClock, *, peer: str = "127.0.0.1", **headers: str
) -> httpx.Client:
    transport = SyncClockTransport(app, clock, client=(peer, 40000))
    return httpx.Client(
        transport=transport, base_url="http://m", headers={"X-API-Key": "bk_test", **headers}
    )


def make(clock: VirtualClock, store: JobStore | None = None, **settings: Any) -> Starlette:
    return create_app(
        Settings(seed=2, **settings),
        clock=clock,
        rng=random.Random(2),
        store=store or MemoryStore(),
    )


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    """The control plane runs on the memory store and on Redis."""
    kind: str = request.param
    return kind


@pytest.fixture
def mock(app: Starlette, clock: VirtualClock) -> Iterator[httpx.Client]:
    with client(app, clock) as http:
        yield http


def submit(http: httpx.Client, prompt: str = PRICE, **headers: str) -> str:
    response = http.post("/agent/prompt", json={"prompt": prompt}, headers=headers)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def add_rule(http: httpx.Client, rule: dict[str, Any]) -> str:
    response = http.post("/__mock/rules", json=rule)
    assert response.status_code == 201, response.text
    rule_id: str = response.json()["id"]
    return rule_id


def test_clock_read_advance_and_set(mock: httpx.Client, clock: VirtualClock) -> None:
    assert mock.get("/__mock/clock").json() == {
        "now": "2025-01-15T10:30:00.000Z",
        "unix": clock.now(),
        "kind": "virtual",
        "speed": None,
    }
    assert (
        mock.post("/__mock/clock", json={"advance": 90}).json()["now"] == "2025-01-15T10:31:30.000Z"
    )
    assert mock.post("/__mock/clock", json={"now": clock.now() + 30}).json()["unix"] == clock.now()
    for bad in ({"advance": -1}, {"advance": "x"}, {}, {"rewind": 1}, {"now": None}):
        response = mock.post("/__mock/clock", json=bad)
        assert response.status_code == 400, bad
        assert set(response.json()) == {"error", "message"}
    # Well-formed changes this clock cannot make (speed on a virtual clock, backwards): 409.
    for conflict in ({"speed": 2}, {"now": 0}):
        response = mock.post("/__mock/clock", json=conflict)
        assert response.status_code == 409, conflict
        assert response.json()["error"] == "Clock conflict"


def test_jobs_listing_filters_and_pages(mock: httpx.Client, clock: VirtualClock) -> None:
    ids = [submit(mock, p) for p in [PRICE, "Swap 1 ETH", PRICE, "Analyze ETH"]]
    submit(mock, PRICE, **{"X-API-Key": "bk_other"})
    everyone = mock.get("/__mock/jobs").json()
    assert everyone["total"] == 5
    mine = mock.get("/__mock/jobs", params={"owner": "bk_test"}).json()
    assert [j["jobId"] for j in mine["jobs"]] == ids
    assert mock.get("/__mock/jobs", params={"category": "price"}).json()["total"] == 3
    page = mock.get("/__mock/jobs", params={"offset": 1, "limit": 2}).json()
    assert [j["jobId"] for j in page["jobs"]] == ids[1:3]
    clock.advance(6)
    statuses = {
        j["status"] for j in mock.get("/__mock/jobs", params={"category": "price"}).json()["jobs"]
    }
    assert statuses <= {"completed", "failed"}
    assert (
        mock.get("/__mock/jobs", params={"status": "pending", "category": "price"}).json()["total"]
        == 0
    )
    for bad in ({"status": "done"}, {"limit": 0}, {"offset": "x"}, {"colour": "red"}):
        assert mock.get("/__mock/jobs", params=bad).status_code == 400, bad


def test_job_detail_shows_schedule_and_body(mock: httpx.Client) -> None:
    job_id = submit(mock)
    detail = mock.get(f"/__mock/jobs/{job_id}").json()
    assert detail["jobId"] == job_id
    assert set(detail["schedule"]) == {"createdAt", "startedAt", "finishedAt", "cancelledAt"}
    assert detail["body"]["status"] == "pending"
    assert mock.get("/__mock/jobs/job_NOPE").status_code == 404


def test_force_outcome_and_finish_time(mock: httpx.Client, clock: VirtualClock) -> None:
    job_id = submit(mock)
    forced = mock.post(
        f"/__mock/jobs/{job_id}/outcome",
        json={"outcome": "failed", "error": "forced", "finish_in": 100},
    )
    assert forced.status_code == 200, forced.text
    clock.advance(99)
    assert mock.get(f"/agent/job/{job_id}").json()["status"] == "processing"
    clock.advance(1)
    body = mock.get(f"/agent/job/{job_id}").json()
    assert (body["status"], body["error"]) == ("failed", "forced")
    again = mock.post(f"/__mock/jobs/{job_id}/outcome", json={"outcome": "completed"})
    assert again.status_code == 409
    for bad in (
        {},
        {"outcome": "won"},
        {"outcome": "completed", "error": "x"},
        {"finish_in": -1},
        {"colour": 1},
    ):
        assert mock.post(f"/__mock/jobs/{submit(mock)}/outcome", json=bad).status_code == 400


def test_rules_crud(mock: httpx.Client) -> None:
    rule_id = add_rule(mock, {"match": {"method": "GET"}, "action": {"drop": {}}, "times": 1})
    assert [r["id"] for r in mock.get("/__mock/rules").json()["rules"]] == [rule_id]
    assert mock.post("/__mock/rules", json={"action": {"boom": {}}}).status_code == 400
    assert mock.delete(f"/__mock/rules/{rule_id}").status_code == 200
    assert mock.delete(f"/__mock/rules/{rule_id}").status_code == 404
    add_rule(mock, {"action": {"drop": {}}})
    assert mock.delete("/__mock/rules").json() == {"rules": []}


def test_respond_rule_then_normal_answers_and_the_journal(mock: httpx.Client) -> None:
    job_id = submit(mock)
    add_rule(
        mock,
        {
            "match": {"method": "GET", "path": "/agent/job/*"},
            "action": {
                "respond": {
                    "status": 503,
                    "headers": {"Retry-After": "2"},
                    "body": {"error": "Service unavailable", "message": "Try again"},
                }
            },
            "times": 2,
        },
    )
    statuses = [mock.get(f"/agent/job/{job_id}").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    journal = mock.get("/__mock/journal", params={"method": "GET", "path": "/agent/job/*"}).json()
    entries = journal["entries"]
    assert [e["status"] for e in entries] == [503, 503, 200]
    assert [e["fault"] for e in entries] == ["respond", "respond", None]
    assert {e["jobId"] for e in entries} == {job_id}
    assert entries[-1]["owner"] == key_fingerprint("bk_test")  # never the key itself
    for owner in ("bk_test", key_fingerprint("bk_test")):  # either finds its requests
        found = mock.get("/__mock/journal", params={"owner": owner, "path": "/agent/job/*"})
        assert len(found.json()["entries"]) == 3, owner
    assert mock.get("/__mock/journal", params={"owner": "bk_other"}).json()["entries"] == []
    assert mock.delete("/__mock/journal").status_code == 200
    assert mock.get("/__mock/journal").json()["entries"] == []
    assert mock.get("/__mock/journal", params={"colour": "x"}).status_code == 400


def test_journal_is_a_bounded_ring(clock: VirtualClock) -> None:
    with client(make(clock, journal_size=3), clock) as http:
        for _ in range(5):
            http.get("/_health")
        http.get("/nope")
        entries = http.get("/__mock/journal").json()["entries"]
        assert [e["path"] for e in entries] == ["/_health", "/_health", "/nope"]
        assert entries[-1]["seq"] == 6


def test_delay_and_hang_run_on_the_clock(mock: httpx.Client, clock: VirtualClock) -> None:
    add_rule(mock, {"match": {"path": "/_health"}, "action": {"delay": {"seconds": 7}}, "times": 1})
    t0 = clock.now()
    assert mock.get("/_health", timeout=30).status_code == 200
    assert clock.now() - t0 == 7
    add_rule(mock, {"match": {"path": "/_health"}, "action": {"hang": {}}, "times": 1})
    t0 = clock.now()
    with pytest.raises(httpx.ReadTimeout):
        mock.get("/_health", timeout=30)
    assert clock.now() - t0 == 30


def test_drop_and_malformed(mock: httpx.Client) -> None:
    add_rule(mock, {"action": {"drop": {}}, "times": 1})
    with pytest.raises(httpx.RemoteProtocolError):
        mock.get("/_health")
    add_rule(mock, {"action": {"malformed": {}}, "times": 1})
    response = mock.get("/_health")
    assert response.status_code == 200
    with pytest.raises(ValueError):  # noqa: PT011 - json.JSONDecodeError is a ValueError
        response.json()


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ({"outcome": "failed", "error": "rule says no"}, "failed"),
        ({"outcome": "completed"}, "completed"),
    ],
)
def test_job_rule_forces_the_outcome(
    mock: httpx.Client, clock: VirtualClock, shape: dict[str, Any], expected: str
) -> None:
    add_rule(mock, {"match": {"prompt": "price"}, "action": {"job": {**shape, "latency": 4}}})
    job_id = submit(mock)
    clock.advance(3.999)
    assert mock.get(f"/agent/job/{job_id}").json()["status"] != expected
    clock.advance(0.001)
    body = mock.get(f"/agent/job/{job_id}").json()
    assert body["status"] == expected
    if expected == "failed":
        assert body["error"] == "rule says no"


def test_stuck_regress_and_vanish(mock: httpx.Client, clock: VirtualClock) -> None:
    stuck = submit(mock, **{"X-Mockbankr-Outcome": "stuck"})
    add_rule(mock, {"match": {"prompt": "regress"}, "action": {"job": {"outcome": "regress"}}})
    add_rule(
        mock, {"match": {"prompt": "vanish"}, "action": {"job": {"outcome": "vanish", "after": 10}}}
    )
    regress = submit(mock, "price regress")
    vanish = submit(mock, "price vanish")
    clock.advance(1.5)  # all three are processing now (queue delay < 1 s)
    polls = [mock.get(f"/agent/job/{regress}").json()["status"] for _ in range(3)]
    assert polls == ["pending", "processing", "processing"]
    assert mock.get(f"/agent/job/{vanish}").status_code == 200
    clock.advance(8.5)
    assert mock.get(f"/agent/job/{vanish}").status_code == 404
    clock.advance(10_000)
    assert mock.get(f"/agent/job/{stuck}").json()["status"] == "processing"


def test_bad_directive_is_a_400(mock: httpx.Client) -> None:
    response = mock.post(
        "/agent/prompt", json={"prompt": PRICE}, headers={"X-Mockbankr-Fault": "explode"}
    )
    assert response.status_code == 400
    assert "X-Mockbankr-Fault" in response.json()["message"]
    assert mock.get("/__mock/jobs").json()["total"] == 0


def test_a_misspelt_directive_next_to_a_directive_is_a_400_naming_it(
    mock: httpx.Client,
) -> None:
    headers = {"X-Mockbankr-Latency": "3", "X-Mockbankr-Outcom": "failed"}
    response = mock.post("/agent/prompt", json={"prompt": PRICE}, headers=headers)
    assert response.status_code == 400
    assert "x-mockbankr-outcom" in response.json()["message"]
    assert mock.get("/__mock/jobs").json()["total"] == 0


def test_daily_limit_is_a_rolling_window_with_the_documented_body(clock: VirtualClock) -> None:
    with client(make(clock, daily_limit=2), clock) as http:
        submit(http)
        clock.advance(3600)
        submit(http)
        refused = http.post("/agent/prompt", json={"prompt": PRICE})
        assert refused.status_code == 429
        body = refused.json()
        assert set(body) == {"error", "message", "resetAt", "limit", "used"}
        assert (body["error"], body["limit"], body["used"]) == ("Daily limit exceeded", 2, 2)
        reset_at = body["resetAt"] / 1000
        assert reset_at == pytest.approx(clock.now() - 3600 + 86_400)
        assert body["message"].startswith("You have reached your daily API limit of 2 messages.")
        assert body["message"].endswith("Resets at 2025-01-16T10:30:00.000Z")
        submit(http, **{"X-API-Key": "bk_other"})  # per key
        clock.set(reset_at)
        submit(http)


def test_the_jobs_listing_never_shows_a_key(mock: httpx.Client) -> None:
    job_id = submit(mock)
    listed = mock.get("/__mock/jobs").json()["jobs"]
    [job] = [j for j in listed if j["jobId"] == job_id]
    assert job["owner"] == "key:" + key_fingerprint("bk_test")
    assert "bk_test" not in str(listed)
    # A client still finds its jobs by its key, its fingerprint, or the owner shown.
    for owner in ("bk_test", "key:bk_test", key_fingerprint("bk_test"), job["owner"]):
        found = mock.get("/__mock/jobs", params={"owner": owner}).json()["jobs"]
        assert [j["jobId"] for j in found] == [job_id], owner
    assert mock.get("/__mock/jobs", params={"owner": "bk_tes"}).json()["jobs"] == []


def test_reset_forgets_jobs_rules_and_journal_but_keeps_start_rules(
    clock: VirtualClock, store: JobStore
) -> None:
    boot = parse_rule({"match": {"path": "/nothing"}, "action": {"drop": {}}, "id": "boot"})
    with client(make(clock, store, rules=(boot,)), clock) as http:
        submit(http)
        add_rule(http, {"action": {"delay": {"seconds": 1}}, "match": {"path": "/x"}})
        assert http.post("/__mock/reset", json={}).json() == {"reset": True, "rules": 1}
        assert http.get("/__mock/jobs").json()["total"] == 0
        assert [r["id"] for r in http.get("/__mock/rules").json()["rules"]] == ["boot"]
        assert http.get("/__mock/journal").json()["entries"] == []


def test_reset_drops_the_encoded_bodies_of_the_jobs_it_forgets(
    app: Starlette, mock: httpx.Client
) -> None:
    for job_id in [submit(mock) for _ in range(5)]:
        assert mock.get(f"/agent/job/{job_id}").status_code == 200
    sim = app.state.simulator
    assert sim.cached_bodies == 5
    assert mock.post("/__mock/reset", json={}).status_code == 200
    assert sim.cached_bodies == 0


def test_control_plane_refuses_non_loopback_callers_without_a_token(
    clock: VirtualClock, app: Starlette
) -> None:
    with client(app, clock, peer="203.0.113.9") as remote:
        response = remote.get("/__mock/jobs")
        assert response.status_code == 403
        assert "loopback" in response.json()["message"]
        assert remote.post("/__mock/reset", json={}).status_code == 403
        assert remote.get("/_health").status_code == 200  # Bankr routes stay open
    with client(app, clock, peer="::1") as local:
        assert local.get("/__mock/jobs").status_code == 200


def test_admin_token_is_required_from_everyone(clock: VirtualClock) -> None:
    app = make(clock, admin_token="s3cret-token")
    with client(app, clock, peer="203.0.113.9") as remote:
        assert remote.get("/__mock/jobs").status_code == 401
        assert (
            remote.get("/__mock/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401
        )
        ok = remote.get("/__mock/jobs", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
    with client(app, clock) as local:
        assert local.get("/__mock/jobs").status_code == 401


def test_journal_times_are_arrival_times_with_both_latencies(
    mock: httpx.Client, clock: VirtualClock
) -> None:
    add_rule(mock, {"match": {"path": "/_health"}, "action": {"delay": {"seconds": 5}}, "times": 1})
    arrived = clock.now()
    mock.get("/_health", timeout=30)
    add_rule(mock, {"action": {"drop": {}}, "times": 1})
    with pytest.raises(httpx.RemoteProtocolError):
        mock.get("/_health")
    delayed, dropped = mock.get("/__mock/journal").json()["entries"]
    assert delayed["simTime"] == "2025-01-15T10:30:00.000Z"
    assert arrived == 1736937000.0
    assert delayed["simLatencyMs"] == 5000
    assert (dropped["status"], dropped["fault"]) == (0, "drop")


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/__mock/clock", {"advance": 1e12}, 400),  # beyond the documented maximum
        ("/__mock/clock", {"advance": 221845392000 - 1736937000 + 1}, 409),  # allowed, too far
        ("/__mock/clock", {"now": 1e13}, 400),
        ("JOB", {"finish_in": 1e12}, 400),
        ("JOB", {"finish_in": 1e300}, 400),
    ],
)
def test_steering_stops_at_the_clock_limit(
    mock: httpx.Client, path: str, body: dict[str, float], status: int
) -> None:
    job_id = submit(mock)
    url = f"/__mock/jobs/{job_id}/outcome" if path == "JOB" else path
    response = mock.post(url, json=body)
    assert response.status_code == status
    message = response.json()["message"]
    assert message.startswith(next(iter(body))) or "9000-01-01T00:00:00.000Z" in message
    assert mock.get("/__mock/jobs").status_code == 200
    assert mock.get(f"/agent/job/{job_id}").json()["status"] == "pending"
