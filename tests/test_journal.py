"""The journal: in flight then done, bounded in entries and bytes, never a whole key."""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc

import httpx
import pytest

from mockbankr import MemoryStore, Settings, VirtualClock, create_app
from mockbankr._asgi import AsyncClockTransport
from mockbankr.errors import ConfigError
from mockbankr.journal import (
    ENTRY_OVERHEAD,
    MAX_ENTRY_BYTES,
    MAX_TEXT,
    Journal,
    key_fingerprint,
    owner_matches,
)
from mockbankr.testing import SyncClockTransport

KEY = "bk_journal_secret_key"


def _request(journal: Journal, path: str = "/agent/job/job_1", **finish: object) -> int:
    handle = journal.begin("GET", path, key_fingerprint(KEY), 10.0, 100.0, user_agent="ua")
    journal.finish(handle, 200, answered=12.0, ended=100.5, **finish)  # type: ignore[arg-type]
    return handle


def test_a_request_is_in_flight_from_begin_until_finish() -> None:
    journal = Journal(size=10)
    handle = journal.begin("GET", "/agent/job/job_1", None, 10.0, 100.0, user_agent="ua")
    (entry,) = journal.entries()
    assert (entry.state, entry.status, entry.job_id, entry.sim_time) == (
        "in-flight",
        0,
        "job_1",
        10.0,
    )
    assert [e.seq for e in journal.query({"state": "in-flight"})] == [handle]
    journal.finish(handle, 504, answered=13.0, ended=100.25, fault="hang", job_status=None)
    (entry,) = journal.entries()
    assert (entry.state, entry.status, entry.fault) == ("done", 504, "hang")
    assert (entry.sim_latency_ms, entry.latency_ms) == (3000.0, 250.0)
    assert journal.query({"state": "in-flight"}) == []


def test_entries_are_in_arrival_order_whatever_order_they_end_in() -> None:
    journal = Journal(size=10)
    slow = journal.begin("GET", "/slow", None, 1.0, 1.0)
    fast = journal.begin("GET", "/fast", None, 2.0, 2.0)
    journal.finish(fast, 200, answered=2.0, ended=2.0)
    assert [(e.path, e.state) for e in journal.entries()] == [
        ("/slow", "in-flight"),
        ("/fast", "done"),
    ]
    journal.finish(slow, 200, answered=9.0, ended=9.0)
    assert [e.path for e in journal.entries()] == ["/slow", "/fast"]
    assert [e.path for e in journal.query({}, limit=1)] == ["/fast"]  # the newest arrival


def test_the_owner_it_authenticated_replaces_the_one_it_claimed() -> None:
    journal = Journal(size=10)
    handle = journal.begin("POST", "/v2/prompt", "0xclaimed", 1.0, 1.0)
    journal.finish(handle, 202, answered=1.0, ended=1.0, owner="0xpayer")
    assert [e.owner for e in journal.entries()] == ["0xpayer"]


def test_clear_forgets_requests_in_flight_too() -> None:
    journal = Journal(size=10)
    handle = journal.begin("GET", "/a", None, 1.0, 1.0)
    journal.clear()
    journal.finish(handle, 200, answered=1.0, ended=1.0)
    assert (journal.entries(), len(journal), journal.nbytes) == ([], 0, 0)
    assert _request(journal) == handle + 1  # the sequence goes on


def test_it_keeps_at_most_size_entries_and_counts_what_it_dropped() -> None:
    journal = Journal(size=3)
    for i in range(5):
        _request(journal, f"/agent/job/job_{i}")
    assert [e.job_id for e in journal.entries()] == ["job_2", "job_3", "job_4"]
    assert journal.dropped == 2


def test_it_keeps_at_most_max_bytes_dropping_the_oldest() -> None:
    journal = Journal(size=1000, max_bytes=10 * MAX_ENTRY_BYTES)
    for i in range(100):
        _request(journal, f"/agent/job/job_{i}_" + "x" * 1000, fault="f" * 1000)
    kept = journal.entries()
    assert journal.nbytes <= journal.max_bytes
    assert 0 < len(kept) < 100
    assert kept[-1].path.startswith("/agent/job/job_99_")  # the newest stay
    assert journal.dropped == 100 - len(kept)


def test_every_text_is_cut_to_the_documented_maximum() -> None:
    journal = Journal(size=10)
    long = "y" * 100_000
    handle = journal.begin(long, "/" + long, long, 1.0, 1.0, user_agent=long)
    journal.finish(
        handle, 200, answered=1.0, ended=1.0, owner=long, job_id=long, fault=long, job_status=long
    )
    (entry,) = journal.entries()
    texts = [entry.method, entry.path, entry.owner, entry.job_id, entry.fault]
    texts += [entry.user_agent, entry.job_status]
    assert all(t is not None and len(t) == MAX_TEXT and t.endswith("…") for t in texts), texts
    assert journal.nbytes <= MAX_ENTRY_BYTES


@pytest.mark.parametrize("shared", [True, False])
def test_the_byte_estimate_is_close_to_what_entries_really_take(shared: bool) -> None:
    journal = Journal(size=20_000, max_bytes=1 << 40)
    fingerprint, agent = key_fingerprint(KEY), "python-httpx/0.28"
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(5000):
            # Shared: one client's owner and User-Agent; else every text a string of its own.
            owner = fingerprint if shared else f"0x{i:040x}"
            ua = agent if shared else f"agent/{i}"
            handle = journal.begin(
                "GET", f"/agent/job/job_{i:020d}", owner, 1.0, 1.0, user_agent=ua
            )
            journal.finish(
                handle, 200, answered=2.0, ended=2.0, job_id=f"job_{i}", job_status=f"s{i}"
            )
        taken = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0.6 < taken / journal.nbytes < 1.4, (taken / 5000, journal.nbytes / 5000)
    assert ENTRY_OVERHEAD < MAX_ENTRY_BYTES


def test_a_fingerprint_names_a_key_without_showing_it() -> None:
    shown = key_fingerprint(KEY)
    assert shown.startswith("bk_…")
    assert len(shown) == len("bk_…") + 12
    assert KEY[3:] not in shown
    assert key_fingerprint("sk-other").startswith("…")  # no prefix but bk_ is shown
    assert key_fingerprint(KEY) != key_fingerprint(KEY + "x")
    # Enough digits that a fleet of keys never shares one (clients would merge).
    fleet = {key_fingerprint(f"bk_exp_1_{i}") for i in range(20_000)}
    assert len(fleet) == 20_000
    assert owner_matches(shown, KEY)
    assert owner_matches(shown, shown)
    assert not owner_matches(shown, "bk_other")
    assert not owner_matches(None, KEY)


def _app(clock: VirtualClock, **settings: object) -> object:
    return create_app(
        Settings(seed=1, **settings),  # type: ignore[arg-type]
        clock=clock,
        rng=random.Random(1),
        store=MemoryStore(),
    )


def test_the_journal_never_shows_a_key_and_finds_its_requests_by_it() -> None:
    clock = VirtualClock()
    app = _app(clock)
    transport = SyncClockTransport(app, clock)  # type: ignore[arg-type]
    with httpx.Client(transport=transport, base_url="http://mockbankr.local") as http:
        http.get("/agent/job/job_nope", headers={"X-API-Key": KEY})
        http.get("/agent/job/job_nope", headers={"Authorization": f"Bearer {KEY}"})
        http.get("/agent/job/job_nope", headers={"X-API-Key": "bk_someone_else"})
        listing = http.get("/__mock/journal")
        assert KEY not in listing.text
        owners = [e["owner"] for e in listing.json()["entries"]]
        assert owners == [key_fingerprint(KEY)] * 2 + [key_fingerprint("bk_someone_else")]
        for wanted in (KEY, key_fingerprint(KEY)):
            found = http.get("/__mock/journal", params={"owner": wanted}).json()["entries"]
            assert len(found) == 2, wanted
        assert http.get("/__mock/verdicts", params={"owner": KEY}).status_code == 200


def test_a_hostile_flood_keeps_the_journal_within_its_bytes() -> None:
    clock = VirtualClock()
    app = _app(clock, journal_bytes=64 * 1024)
    transport = SyncClockTransport(app, clock)  # type: ignore[arg-type]
    big = "z" * 10_000  # the key and User-Agent within the 32 KiB of headers
    with httpx.Client(transport=transport, base_url="http://mockbankr.local") as http:
        for i in range(200):
            http.get(f"/agent/job/{i}{big}", headers={"User-Agent": big, "X-API-Key": big})
        answer = http.get("/__mock/journal").json()
    journal: Journal = app.state.journal  # type: ignore[attr-defined]
    assert journal.nbytes <= 64 * 1024
    assert answer["maxBytes"] == 64 * 1024
    assert answer["dropped"] == 200 - len(answer["entries"]) > 0
    for entry in answer["entries"]:
        assert len(entry["path"]) <= MAX_TEXT
        assert len(entry["userAgent"]) <= MAX_TEXT
        assert big not in entry["owner"]


@pytest.mark.anyio
async def test_a_hung_request_shows_in_flight_until_it_ends() -> None:
    clock = VirtualClock()
    app = _app(clock)
    transport = AsyncClockTransport(app, clock)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://mockbankr.local") as http:
        rule = {"match": {"path": "/_health"}, "action": {"hang": {"seconds": 60}}, "times": 1}
        assert (await http.post("/__mock/rules", json=rule)).status_code == 201
        hung = asyncio.ensure_future(http.get("/_health", headers={"X-API-Key": KEY}, timeout=None))
        await clock.sleep(1)  # the earliest sleeper: time jumps here, not to the hang's end
        assert not hung.done()
        (held,) = (await http.get("/__mock/journal")).json()["entries"]
        assert (held["state"], held["status"], held["path"]) == ("in-flight", 0, "/_health")
        assert held["owner"] == key_fingerprint(KEY)
        assert (await hung).status_code == 504
        (ended,) = (await http.get("/__mock/journal")).json()["entries"]
        assert (ended["seq"], ended["state"], ended["status"]) == (held["seq"], "done", 504)
        assert (ended["fault"], ended["simLatencyMs"]) == ("hang", 60_000)


@pytest.mark.parametrize("value", [0, 65_535, 2**41, 1.5, True])
def test_settings_refuse_journal_bytes_out_of_bounds(value: object) -> None:
    with pytest.raises(ConfigError, match="journal bytes"):
        Settings(journal_bytes=value)  # type: ignore[arg-type]
