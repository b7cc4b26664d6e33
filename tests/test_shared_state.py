"""Two apps in this process on one Redis behave as one server: the clock, the rules (with
their ``times``) and the daily-limit windows are shared (mockbankr.shared), in-process.

Their daily quota is counted by one script in Redis (exactly ``limit`` of any number of
racing prompts), and their control-plane changes run one at a time under a lease lock
(none is lost when both servers change the same area at once)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _redis_server import RedisServer

from mockbankr import ScaledClock, Settings, VirtualClock, create_app
from mockbankr.errors import DailyLimitExceeded, StoreUnavailable
from mockbankr.limits import DAY, DailyLimit
from mockbankr.redis_store import RedisStore
from mockbankr.rules import Rule, RuleSet, parse_rule
from mockbankr.shared import SharedState
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


def test_the_daily_limit_window_is_one_for_both_and_outlives_them(
    pair: tuple[httpx.Client, httpx.Client], redis_server: RedisServer
) -> None:
    a, b = pair
    statuses = [(a, b)[i % 2].post("/agent/prompt", json=PROMPT).status_code for i in range(4)]
    assert statuses == [202, 202, 202, 429]
    # a server started later on the same Redis (a restart) finds the window spent
    with _client(redis_server.url, Settings(seed=1, daily_limit=3)) as later:
        refused = later.post("/agent/prompt", json=PROMPT)
    assert refused.status_code == 429
    assert (refused.json()["used"], refused.json()["resetAt"]) == (3, (START + DAY) * 1000)


def test_a_reset_on_one_resets_both(pair: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = pair
    rule = {"match": {"path": "/wallet/me"}, "action": {"respond": {"status": 418}}}
    assert a.post("/__mock/rules", json=rule).status_code == 201
    statuses = [a.post("/agent/prompt", json=PROMPT).status_code for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
    assert b.post("/__mock/reset", json={}).status_code == 200
    assert a.get("/__mock/rules").json()["rules"] == []
    assert a.get("/__mock/jobs").json()["total"] == 0
    assert a.get("/wallet/me").status_code == 200
    assert a.post("/agent/prompt", json=PROMPT).status_code == 202  # the quota too


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


# -- the quota: one script in Redis ---------------------------------------------------------

#: A start with many decimals: the window's start must come back exactly.
EXACT = 1_764_000_000.123456789


def test_the_quota_script_opens_and_closes_the_window_on_the_simulated_clock(
    redis_server: RedisServer,
) -> None:
    redis_server.flush()
    store = RedisStore(redis_server.url)

    async def run() -> None:
        take = store.take_quota
        assert await take("a", limit=2, now=EXACT, day=DAY) == (True, 1, EXACT)
        assert await take("a", limit=2, now=EXACT + 10, day=DAY) == (True, 2, EXACT)
        assert await take("b", limit=2, now=EXACT + 10, day=DAY) == (True, 1, EXACT + 10)
        # over the limit: refused, nothing counted; a higher limit (another key) still counts
        assert await take("a", limit=2, now=EXACT + DAY - 0.001, day=DAY) == (False, 2, EXACT)
        assert await take("a", limit=3, now=EXACT + 20, day=DAY) == (True, 3, EXACT)
        assert await store.quota_used(["a", "b", "c"], EXACT + 20, DAY) == [3, 1, 0]
        # 24 simulated hours after the first prompt the window has closed; the next opens one
        assert await store.quota_used(["a"], EXACT + DAY, DAY) == [0]
        assert await take("a", limit=2, now=EXACT + DAY, day=DAY) == (True, 1, EXACT + DAY)
        assert await store.quota_used(["a", "b"], EXACT + DAY, DAY) == [1, 1]
        await store.clear_quota()
        assert await store.quota_used(["a", "b"], EXACT + DAY, DAY) == [0, 0]
        await store.aclose()

    asyncio.run(run())


def test_exactly_limit_of_many_racing_prompts_on_two_servers_are_counted(
    redis_server: RedisServer,
) -> None:
    """Two stores (two servers' connection pools), each a DailyLimit's: 200 prompts of one
    account at once, 37 allowed. Counted in each server's memory, both would allow 37."""
    redis_server.flush()
    stores = [RedisStore(redis_server.url), RedisStore(redis_server.url)]
    quotas = [DailyLimit(), DailyLimit()]
    for quota, store in zip(quotas, stores, strict=True):
        quota.shared = store

    async def prompt(i: int) -> DailyLimitExceeded | None:
        try:
            await quotas[i % 2].acquire("acme", limit=37, now=EXACT)
        except DailyLimitExceeded as exc:
            return exc
        return None

    async def run() -> list[DailyLimitExceeded | None]:
        outcomes = await asyncio.gather(*(prompt(i) for i in range(200)))
        assert await quotas[1].usage(["acme", "other"], EXACT) == {"acme": 37, "other": 0}
        await quotas[0].reset()  # POST /__mock/reset's hook: the count is gone everywhere
        assert await quotas[1].usage(["acme"], EXACT) == {"acme": 0}
        for store in stores:
            await store.aclose()
        return outcomes

    outcomes = asyncio.run(run())
    refused = [o for o in outcomes if o is not None]
    assert len(refused) == 200 - 37
    assert {(r.used, r.limit, r.reset_at) for r in refused} == {(37, 37, EXACT + DAY)}


# -- control-plane changes: one at a time across servers -------------------------------------


def test_concurrent_control_changes_on_two_servers_are_all_kept(
    redis_server: RedisServer,
) -> None:
    """40 rules, 10 clock advances and 10 revocations sent to two servers at once: each
    server's change loads the other's first (last-writer-wins would lose most of them)."""
    redis_server.flush()
    settings = Settings(seed=1)

    def server() -> httpx.AsyncClient:
        app = create_app(
            settings,
            clock=ScaledClock(0, start=START),
            rng=random.Random(1),
            store=RedisStore(redis_server.url),
        )
        return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://127.0.0.1")

    def rule(i: int) -> dict[str, Any]:
        return {"match": {"path": f"/wallet/{i}"}, "action": {"respond": {"status": 418}}}

    async def run() -> None:
        async with server() as a, server() as b:
            pair = (a, b)
            changes = [pair[i % 2].post("/__mock/rules", json=rule(i)) for i in range(40)]
            changes += [pair[i % 2].post("/__mock/clock", json={"advance": 60}) for i in range(10)]
            changes += [
                pair[i % 2].post("/__mock/keys/revoke", json={"key": f"bk_gone{i}"})
                for i in range(10)
            ]
            answers = await asyncio.gather(*changes)
            assert [r.status_code for r in answers] == [201] * 40 + [200] * 20
            for http in pair:
                rules = (await http.get("/__mock/rules")).json()["rules"]
                assert sorted(r["match"]["path"] for r in rules) == sorted(
                    f"/wallet/{i}" for i in range(40)
                )
                assert len({r["id"] for r in rules}) == 40
                assert (await http.get("/__mock/clock")).json()["unix"] == START + 600
                keys = (await http.get("/__mock/keys")).json()["keys"]
                assert {k["key"] for k in keys if k["revoked"]} == {
                    f"bk_gone{i}" for i in range(10)
                }

    asyncio.run(run())


def test_the_lock_has_a_lease_and_only_its_holder_gives_it_back(
    redis_server: RedisServer,
) -> None:
    redis_server.flush()
    one, other = RedisStore(redis_server.url), RedisStore(redis_server.url)

    async def run() -> None:
        crashed = await one.lock(lease=0.2, wait=0)  # a server that never gives it back
        with pytest.raises(StoreUnavailable, match="lock stayed taken"):
            await other.lock(lease=5, wait=0.05)
        taken = await other.lock(lease=5, wait=5)  # once the lease has run out
        await one.unlock(crashed)  # too late: not the holder any more, nothing happens
        with pytest.raises(StoreUnavailable):
            await one.lock(lease=5, wait=0)
        await other.unlock(taken)
        await one.unlock(await one.lock(lease=5, wait=0))
        for store in (one, other):
            await store.aclose()

    asyncio.run(run())


def _hold_the_lock(redis_server: RedisServer) -> tuple[RedisStore, str]:
    """Take the control-plane lock for 10 s, as another server would: its store and token."""
    holder = RedisStore(redis_server.url)

    async def hold() -> str:
        token = await holder.lock(lease=10, wait=0)
        await holder.aclose()
        return token

    return holder, asyncio.run(hold())


def test_a_change_waits_for_the_lock_then_is_a_503_that_changes_nothing(
    pair: tuple[httpx.Client, httpx.Client],
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _ = pair
    monkeypatch.setattr("mockbankr.shared.LOCK_WAIT", 0.1)
    holder, token = _hold_the_lock(redis_server)
    rule = {"match": {"path": "/wallet/me"}, "action": {"respond": {"status": 418}}}
    refused = a.post("/__mock/rules", json=rule)
    assert refused.status_code == 503
    assert "control-plane lock" in refused.json()["message"]
    assert a.get("/__mock/rules").json()["rules"] == []  # reads never wait
    assert a.get("/wallet/me").status_code == 200
    asyncio.run(holder.unlock(token))
    assert a.post("/__mock/rules", json=rule).status_code == 201


class _LateReads(RedisStore):
    """A store whose next read of the rules is made at once but answered only when
    ``release`` is set (a request of the same server whose reload is slow)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reached = asyncio.Event()
        self.release: asyncio.Event | None = None

    async def read(self, area: str) -> tuple[int, bytes | None]:
        found = await super().read(area)
        release, self.release = self.release, None
        if release is not None and area == "rules":
            self.reached.set()
            await release.wait()
        return found


@pytest.mark.parametrize("late", ["before the change", "after the change"])
def test_a_slow_reload_of_another_request_never_undoes_a_change(
    redis_server: RedisServer, late: str
) -> None:
    """Server A's request Y reads the rules (b1), B then adds b2; A's change X loads b1+b2
    and adds a1. Y's answer, arriving late, must not replace that (with b1 alone)."""
    redis_server.flush()

    def rule(rule_id: str) -> Rule:
        return parse_rule({"id": rule_id, "match": {"path": "/x"}, "action": {"drop": {}}})

    async def run() -> list[str]:
        stores = [_LateReads(redis_server.url), RedisStore(redis_server.url)]
        rules = [RuleSet(random.Random(1)), RuleSet(random.Random(1))]
        a, b = (
            SharedState(store, clock=VirtualClock(), rules=ruleset, limits=DailyLimit())
            for store, ruleset in zip(stores, rules, strict=True)
        )
        await a.before()
        await b.before()
        async with b.exclusive():
            rules[1].add(rule("b1"))
        release = stores[0].release = asyncio.Event()
        slow = asyncio.ensure_future(a.before())  # request Y on server A
        await stores[0].reached.wait()
        async with b.exclusive():
            rules[1].add(rule("b2"))
        async with a.exclusive():  # request X on server A
            if late == "after the change":
                rules[0].add(rule("a1"))
            release.set()
            await slow
            if late == "before the change":
                rules[0].add(rule("a1"))
        await b.before(control=True)
        for store in stores:
            await store.aclose()
        return [listed["id"] for listed in rules[1].listing()]

    assert asyncio.run(run()) == ["b1", "b2", "a1"]


def test_a_caller_the_control_plane_refuses_never_waits_for_the_lock(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock is taken after the admin token is checked: a caller without it cannot
    hold up (or be held up by) the changes of those with it."""
    redis_server.flush()
    monkeypatch.setattr("mockbankr.shared.LOCK_WAIT", 0.1)
    token = "s3cret-token"
    holder, held = _hold_the_lock(redis_server)
    rule = {"match": {"path": "/wallet/me"}, "action": {"respond": {"status": 418}}}
    with _client(redis_server.url, Settings(seed=1, admin_token=token)) as http:
        assert http.post("/__mock/rules", json=rule).status_code == 401
        authorised = {"Authorization": f"Bearer {token}"}
        assert http.post("/__mock/rules", json=rule, headers=authorised).status_code == 503
        asyncio.run(holder.unlock(held))
        assert http.post("/__mock/rules", json=rule, headers=authorised).status_code == 201
