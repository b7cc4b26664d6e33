"""Two apps in this process on one Redis behave as one server: the clock, the rules (with
their ``times``) and the daily-limit windows are shared (mockbankr.shared), in-process."""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest
from _redis_server import RedisServer

from mockbankr import ScaledClock, Settings, create_app
from mockbankr.redis_store import RedisStore
from mockbankr.testing import SyncClockTransport

KEY = {"X-API-Key": "bk_shared"}
PROMPT = {"prompt": "What is the price of ETH?"}
START = 1_764_000_000.0


def _client(url: str, settings: Settings) -> httpx.Client:
    clock = ScaledClock(0, start=START)  # stopped: only the control plane moves it
    app = create_app(settings, clock=clock, rng=random.Random(1), store=RedisStore(url))
    return httpx.Client(transport=SyncClockTransport(app, clock), base_url="http://m", headers=KEY)


@pytest.fixture
def pair(redis_server: RedisServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    redis_server.flush()
    settings = Settings(seed=1, daily_limit=3)
    with _client(redis_server.url, settings) as a, _client(redis_server.url, settings) as b:
        yield a, b


def test_a_clock_change_on_one_is_the_next_request_s_clock_on_the_other(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    assert b.get("/__mock/clock").json()["unix"] == START
    assert a.post("/__mock/clock", json={"advance": 3600}).status_code == 200
    assert b.get("/__mock/clock").json()["unix"] == START + 3600
    assert b.post("/__mock/clock", json={"speed": 2}).json()["speed"] == 2
    assert a.get("/__mock/clock").json()["speed"] == 2


def test_rules_and_their_times_are_counted_across_both(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    rule = {"match": {"path": "/wallet/me"}, "action": {"respond": {"status": 418}}, "times": 3}
    assert a.post("/__mock/rules", json=rule).status_code == 201
    assert [r["id"] for r in b.get("/__mock/rules").json()["rules"]] == ["r1"]
    statuses = [(a, b)[i % 2].get("/wallet/me").status_code for i in range(8)]
    assert statuses == [418, 418, 418, 200, 200, 200, 200, 200]
    assert a.get("/__mock/rules").json()["rules"][0]["remaining"] == 0
    # a rule added on the other server gets the next id, and deleting it shows on both
    assert b.post("/__mock/rules", json=rule).json()["id"] == "r2"
    assert a.delete("/__mock/rules/r2").status_code == 200
    assert [r["id"] for r in b.get("/__mock/rules").json()["rules"]] == ["r1"]


def test_the_daily_limit_window_is_one_for_both(pair: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = pair
    statuses = [(a, b)[i % 2].post("/agent/prompt", json=PROMPT).status_code for i in range(4)]
    assert statuses == [202, 202, 202, 429]


def test_a_reset_on_one_resets_both(pair: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = pair
    rule = {"match": {"path": "/wallet/me"}, "action": {"respond": {"status": 418}}}
    assert a.post("/__mock/rules", json=rule).status_code == 201
    assert a.post("/agent/prompt", json=PROMPT).status_code == 202
    assert b.post("/__mock/reset", json={}).status_code == 200
    assert a.get("/__mock/rules").json()["rules"] == []
    assert a.get("/__mock/jobs").json()["total"] == 0
    assert a.get("/wallet/me").status_code == 200


def test_a_key_revoked_or_rotated_on_one_is_so_on_the_other(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    assert b.get("/agent/me").status_code == 200
    assert a.post("/__mock/keys/revoke", json={"key": "bk_shared"}).status_code == 200
    assert b.get("/agent/me").status_code == 401
    other = {"X-API-Key": "bk_other"}
    rotated = b.post("/__mock/keys/rotate", json={"key": "bk_other", "newKey": "bk_next"})
    assert rotated.status_code == 200, rotated.text
    assert a.get("/agent/me", headers=other).status_code == 401
    assert a.get("/__mock/keys").json() == b.get("/__mock/keys").json()


def _requests_total(metrics: str, route: str, status: int) -> float:
    line = f'mockbankr_requests_total{{route="{route}",status="{status}"}} '
    (found,) = [x for x in metrics.splitlines() if x.startswith(line)]
    return float(found.removeprefix(line))


def test_the_metrics_count_the_requests_of_both(pair: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = pair
    for server, times in ((a, 2), (b, 3)):
        for _ in range(times):
            assert server.get("/wallet/me").status_code == 200
    assert _requests_total(a.get("/__mock/metrics").text, "/wallet/me", 200) == 5
    assert _requests_total(b.get("/__mock/metrics").text, "/wallet/me", 200) == 5
    assert a.post("/__mock/reset", json={}).status_code == 200
    assert "/wallet/me" not in b.get("/__mock/metrics").text
