"""The journal on Redis: one journal for every server, bounded as in memory, the same entries.

Against the session's real ``redis-server`` (two :class:`RedisJournal` on one Redis stand
for two servers), and one of a test's own where Redis is lost.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from _redis_server import RedisServer, start_redis

from mockbankr import Settings, VirtualClock, create_app
from mockbankr.clock import perf_seconds
from mockbankr.errors import StoreUnavailable
from mockbankr.journal import MAX_ENTRY_BYTES, Journal, RequestJournal, key_fingerprint
from mockbankr.redis_journal import RETRY_INTERVAL, RedisJournal
from mockbankr.redis_store import RedisStore
from mockbankr.testing import SyncClockTransport

KEY = "bk_redis_journal_secret"

Make = Callable[..., RequestJournal]


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url


@pytest.fixture(params=["memory", "redis"])
def make(request: pytest.FixtureRequest) -> Make:
    """A journal of either kind (Redis: on the session's server, flushed)."""
    if request.param == "memory":
        return Journal
    url: str = request.getfixturevalue("redis_url")
    return lambda size, max_bytes=1 << 30: RedisJournal(RedisStore(url), size, max_bytes)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def _request(journal: RequestJournal, path: str = "/agent/job/job_1", **finish: Any) -> int:
    handle = journal.begin("GET", path, key_fingerprint(KEY), 10.0, perf_seconds(), user_agent="ua")
    journal.finish(handle, 200, answered=12.0, ended=perf_seconds(), **finish)
    return handle


async def _read(journal: RequestJournal) -> list[Any]:
    await journal.sync()
    return journal.entries()


def test_it_keeps_at_most_size_entries_and_counts_what_it_dropped(make: Make) -> None:
    async def test() -> None:
        journal = make(3)
        for i in range(5):
            _request(journal, f"/agent/job/job_{i}")
            if i == 1:
                await journal.flush()  # some trimmed in Redis, some before they were written
        assert [e.job_id for e in await _read(journal)] == ["job_2", "job_3", "job_4"]
        assert (journal.dropped, len(journal)) == (2, 3)

    run(test)


def test_it_keeps_at_most_max_bytes_dropping_the_oldest(make: Make) -> None:
    async def test() -> None:
        journal, reference = make(1000, 10 * MAX_ENTRY_BYTES), Journal(1000, 10 * MAX_ENTRY_BYTES)
        for i in range(100):
            for each in (journal, reference):
                _request(each, f"/agent/job/job_{i}_" + "x" * 1000, fault="f" * 1000)
            if i % 7 == 0:
                await journal.flush()
        kept = await _read(journal)
        assert reference.nbytes <= reference.max_bytes
        assert 10 <= len(kept) == len(reference) < 100  # as many as the memory journal keeps
        assert kept[-1].path.startswith("/agent/job/job_99_")  # the newest stay
        assert journal.dropped == 100 - len(kept)

    run(test)


def test_entries_are_in_arrival_order_and_in_flight_until_they_end(make: Make) -> None:
    async def test() -> None:
        journal = make(10)
        slow = journal.begin("GET", "/slow", None, 1.0, perf_seconds())
        fast = journal.begin("GET", "/agent/job/job_9", None, 2.0, perf_seconds())
        journal.finish(fast, 200, answered=2.5, ended=perf_seconds(), job_status="pending")
        assert [(e.path, e.state) for e in await _read(journal)] == [
            ("/slow", "in-flight"),
            ("/agent/job/job_9", "done"),
        ]
        (held,) = journal.query({"state": "in-flight"})
        journal.finish(slow, 504, answered=9.0, ended=perf_seconds(), fault="hang")
        entries = await _read(journal)
        assert [(e.path, e.state) for e in entries] == [
            ("/slow", "done"),
            ("/agent/job/job_9", "done"),
        ]
        assert (entries[0].seq, entries[0].status, entries[0].fault) == (held.seq, 504, "hang")
        assert entries[0].sim_latency_ms == 8000.0
        assert (entries[1].job_id, entries[1].job_status) == ("job_9", "pending")
        assert [e.path for e in journal.query({}, limit=1)] == ["/agent/job/job_9"]

    run(test)


def test_a_redis_journal_gives_the_memory_journals_entries(redis_url: str) -> None:
    async def test() -> None:
        memory, shared = Journal(10), RedisJournal(RedisStore(redis_url), 10)
        for journal in (memory, shared):
            a = journal.begin("POST", "/v2/prompt", "0xclaimed", 1.0, 5.0, user_agent="ua/1")
            b = journal.begin("GET", "/agent/job/job_7", key_fingerprint(KEY), 2.0, 6.0)
            journal.finish(b, 200, answered=2.0, ended=6.5, job_status="completed")
            journal.finish(
                a, 429, answered=3.0, ended=7.0, owner="0xpayer", retry_after=7.0, prompt_hash="ab"
            )
        mine, theirs = await _read(memory), await _read(shared)
        # every field, but wall_time: it is measured when each journal recorded it
        assert [e.to_json() | {"wallTime": None} for e in theirs] == [
            e.to_json() | {"wallTime": None} for e in mine
        ]

    run(test)


def test_two_servers_journal_into_one_and_seqs_are_unique(redis_url: str) -> None:
    async def test() -> None:
        a = RedisJournal(RedisStore(redis_url), 100)
        b = RedisJournal(RedisStore(redis_url), 100)
        for i in range(10):
            _request(a, f"/agent/job/job_a{i}")
            _request(b, f"/agent/job/job_b{i}")
            if i % 3 == 0:
                await (a if i % 2 else b).flush()
        await b.flush()
        seen_on_a = await _read(a)
        seen_on_b = await _read(b)
        assert seen_on_a == seen_on_b
        assert sorted(e.job_id for e in seen_on_a) == sorted(
            [f"job_a{i}" for i in range(10)] + [f"job_b{i}" for i in range(10)]
        )
        seqs = [e.seq for e in seen_on_a]
        assert seqs == sorted(set(seqs))  # unique, listed in order
        # each server's requests keep their arrival order
        assert [e.job_id for e in seen_on_a if e.job_id.startswith("job_a")] == [
            f"job_a{i}" for i in range(10)
        ]

    run(test)


def test_a_request_in_flight_on_one_is_seen_on_the_other_then_replaced(redis_url: str) -> None:
    async def test() -> None:
        a = RedisJournal(RedisStore(redis_url), 10)
        b = RedisJournal(RedisStore(redis_url), 10)
        _request(b)
        await b.flush()
        held = a.begin("GET", "/_health", key_fingerprint(KEY), 1.0, perf_seconds() - 1.0)

        async def shown_on_b() -> Any:
            while True:  # written in the background: no reader on a asks for it
                entries = await _read(b)
                if len(entries) > 1:
                    return entries[1:]
                await asyncio.sleep(0.01)

        (entry,) = await asyncio.wait_for(shown_on_b(), timeout=5)
        assert (entry.state, entry.status, entry.path) == ("in-flight", 0, "/_health")
        assert entry.owner == key_fingerprint(KEY)
        assert 900 < entry.latency_ms < 60_000  # the wall time so far
        a.finish(held, 504, answered=61.0, ended=perf_seconds(), fault="hang")
        await a.flush()
        (_, ended) = await _read(b)
        assert (ended.seq, ended.state, ended.status) == (entry.seq, "done", 504)
        assert ended.fault == "hang"

    run(test)


def test_a_clear_on_one_server_forgets_every_entry_and_requests_shown_in_flight(
    redis_url: str,
) -> None:
    async def test() -> None:
        a = RedisJournal(RedisStore(redis_url), 10)
        b = RedisJournal(RedisStore(redis_url), 10)
        for _ in range(3):
            _request(a)
        held = a.begin("GET", "/_health", None, 1.0, perf_seconds())
        await a.flush()  # written in flight
        last = (await _read(b))[-1].seq
        _request(a, "/agent/job/job_answered_before_the_clear")  # not written yet
        unshown = a.begin("GET", "/agent/me", None, 1.0, perf_seconds())
        await b.aclear()
        a.finish(held, 200, answered=1.0, ended=perf_seconds())  # ends after the clear
        a.finish(unshown, 200, answered=1.0, ended=perf_seconds())
        assert (await _read(a), a.dropped) == ([], 0)
        _request(b)
        await b.flush()
        (after,) = await _read(a)
        assert after.seq == last + 1  # the sequence goes on

    run(test)


def test_redis_holds_fingerprints_never_keys(redis_url: str) -> None:
    clock = VirtualClock()
    app = create_app(
        Settings(seed=1), clock=clock, rng=random.Random(1), store=RedisStore(redis_url)
    )
    assert isinstance(app.state.journal, RedisJournal)
    with httpx.Client(transport=SyncClockTransport(app, clock), base_url="http://m") as http:
        http.get("/agent/job/job_nope", headers={"X-API-Key": KEY})
        http.get("/wallet/me", headers={"Authorization": f"Bearer {KEY}"})
        (a, b) = http.get("/__mock/journal", params={"owner": KEY}).json()["entries"]
    assert a["owner"] == b["owner"] == key_fingerprint(KEY)
    client = redis.Redis.from_url(redis_url)
    try:
        stored: list[bytes] = []
        for key in client.keys("{mockbankr}:journal:*"):
            if client.type(key) == b"list":
                stored += client.lrange(key, 0, -1)
            else:
                stored += client.hgetall(key).values()
    finally:
        client.close()
    assert sum(key_fingerprint(KEY).encode() in value for value in stored) == 2
    assert not [value for value in stored if KEY.encode() in value]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    server.kill()


def test_a_lost_redis_fails_reads_never_requests_and_the_journal_catches_up(
    own_redis: RedisServer,
) -> None:
    async def test() -> None:
        journal = RedisJournal(RedisStore(own_redis.url), 5)
        _request(journal, "/agent/job/job_before")
        await journal.flush()
        own_redis.kill()
        for i in range(8):  # the request path never raises, nor waits
            _request(journal, f"/agent/job/job_{i}")
        assert journal.dropped == 3  # at most 5 kept while Redis is gone
        held = journal.begin("GET", "/_health", None, 1.0, perf_seconds() - 1.0)
        with pytest.raises(StoreUnavailable, match=own_redis.url):
            await journal.sync()
        with pytest.raises(StoreUnavailable):
            await journal.aclear()
        with pytest.raises(StoreUnavailable, match=own_redis.url):  # nothing to write: a read
            await RedisJournal(RedisStore(own_redis.url), 5).sync()
        assert journal.dropped == 3
        own_redis.start()  # the same port, empty
        journal.finish(held, 200, answered=1.0, ended=perf_seconds())
        kept = await _read(journal)
        assert [e.path for e in kept] == [
            "/agent/job/job_4",
            "/agent/job/job_5",
            "/agent/job/job_6",
            "/agent/job/job_7",
            "/_health",
        ]
        assert journal.dropped == 4  # job_before is gone with that Redis; job_0..job_3 dropped

    run(test)


def test_a_background_write_retries_once_redis_is_back(own_redis: RedisServer) -> None:
    async def test() -> None:
        journal = RedisJournal(RedisStore(own_redis.url), 10)
        other = RedisJournal(RedisStore(own_redis.url), 10)
        own_redis.kill()
        _request(journal, "/agent/job/job_lost")
        await asyncio.sleep(0.05)  # its write fails
        own_redis.start()

        async def shown() -> list[Any]:
            while True:  # written in the background, once Redis is back
                entries = await _read(other)
                if entries:
                    return entries
                await asyncio.sleep(0.05)

        (entry,) = await asyncio.wait_for(shown(), timeout=RETRY_INTERVAL + 4)
        assert entry.job_id == "job_lost"

    run(test)
