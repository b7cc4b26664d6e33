"""The shared store: the JobStore contract on memory and on Redis, compact records, a lost
Redis answered with 503 and recovered from, and the ``serve`` flags around it."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from _redis_server import RedisServer, free_port, start_redis
from click.testing import CliRunner

from mockbankr import JobStore, Settings, VirtualClock, create_app
from mockbankr.cli import main
from mockbankr.jobs import JobFault, JobRecord
from mockbankr.ledger import LedgerEntry
from mockbankr.redis_store import RedisStore, decode_job, encode_job
from mockbankr.testing import SyncClockTransport
from tests.conftest import STORES


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def record(job_id: str, **changes: object) -> JobRecord:
    base = JobRecord(job_id, "key:bk_1", "What is the price of ETH?", None, "price", 1.0, 2.0, 5.0)
    return JobRecord(**{**{f: getattr(base, f) for f in base.__struct_fields__}, **changes})


def entry(job_id: str, nonce: str) -> LedgerEntry:
    return LedgerEntry(
        payer="0xA",
        amount_atomic=100_000,
        asset="0xU",
        network="base",
        nonce=nonce,
        job_id=job_id,
        prompt="hi",
        at=3.0,
        transaction="0xT",
    )


def test_the_store_contract(store: JobStore) -> None:
    async def run() -> None:
        assert [await store.next_seq() for _ in range(3)] == [0, 1, 2]
        a, b, c = record("job_A"), record("job_B", owner="key:bk_2"), record("job_C")
        assert await store.add(a)
        assert not await store.add(record("job_A", prompt="other"))  # the id is taken
        assert await store.get("job_A") == a
        assert await store.get("job_NOPE") is None
        # compare-and-set: only against the stored record
        cancelled = record("job_A", cancelled_at=1.5)
        assert not await store.replace(record("job_A", prompt="stale"), cancelled)
        assert await store.replace(a, cancelled)
        assert not await store.replace(a, record("job_A", failed=True))  # a is stale now
        assert await store.get("job_A") == cancelled
        # a payment: the nonce is accepted once, and a taken job id stores nothing
        assert await store.add_paid(b, entry("job_B", "0x01"))
        assert not await store.add_paid(c, entry("job_C", "0x01"))
        assert not await store.add_paid(record("job_B"), entry("job_B", "0x02"))
        assert await store.add_paid(c, entry("job_C", "0x03"))
        assert [e.nonce for e in await store.ledger()] == ["0x01", "0x03"]
        # scan: submission order, one page and the total
        page, total = await store.scan(lambda job: job.owner == "key:bk_1", offset=1, limit=5)
        assert (page, total) == ([c], 2)
        page, total = await store.scan(lambda job: True, offset=0, limit=2)
        assert ([j.id for j in page], total) == (["job_A", "job_B"], 3)
        assert await store.count() == 3
        await store.clear()
        assert (await store.count(), await store.ledger(), await store.next_seq()) == (0, [], 0)

    asyncio.run(run())


def test_a_record_round_trips_compactly() -> None:
    full = record(
        "job_0123456789AB",
        thread_id="thr_x",
        failed=True,
        variant=2,
        error="boom",
        cancelled_at=3.5,
        fault=JobFault("vanish", at=4.0),
        read_only=True,
    )
    assert decode_job(encode_job(full)) == full
    plain = record("job_0123456789AB")
    assert decode_job(encode_job(plain)) == plain
    # No field names: a typical record is its values and a few bytes.
    values = sum(len(str(getattr(plain, f))) for f in ("id", "owner", "prompt", "category"))
    assert len(encode_job(plain)) < values + 60


@pytest.fixture
def own_redis(tmp_path: Path) -> RedisServer:
    """A redis-server of this test's own, which it may kill and restart."""
    server = start_redis(tmp_path)
    yield server  # type: ignore[misc]
    server.kill()


def test_a_lost_store_is_a_503_and_the_server_serves_again(own_redis: RedisServer) -> None:
    clock = VirtualClock()
    app = create_app(
        Settings(seed=1), clock=clock, rng=random.Random(1), store=RedisStore(own_redis.url)
    )
    with httpx.Client(
        transport=SyncClockTransport(app, clock),
        base_url="http://m",
        headers={"X-API-Key": "bk_1"},
        timeout=30,
    ) as http:
        prompt = {"prompt": "What is the price of ETH?"}
        job_id = http.post("/agent/prompt", json=prompt).json()["jobId"]
        assert http.get(f"/agent/job/{job_id}").status_code == 200
        own_redis.kill()
        started = time.monotonic()
        for response in (
            http.get(f"/agent/job/{job_id}"),
            http.post("/agent/prompt", json=prompt),
            http.get("/__mock/jobs"),
        ):
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["error"] == "Service unavailable"
            assert own_redis.url in body["message"]
            assert response.headers["retry-after"] == "1"
        assert time.monotonic() - started < 5  # refused at once, never a hang
        own_redis.start()  # same port; this Redis kept nothing
        again = http.post("/agent/prompt", json=prompt)
        assert again.status_code == 202
        assert http.get(f"/agent/job/{again.json()['jobId']}").status_code == 200
        assert http.get("/__mock/jobs").json()["total"] == 1


def test_serve_with_an_unreachable_store_exits_2_naming_it() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(main, ["serve", "--port", str(free_port()), "--store", url])
    assert result.exit_code == 2, result.output
    assert f"the state store {url} cannot be reached" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "2"], "--workers 2 needs a shared store"),
        (["--store", "mysql://db/1"], "--store must be memory or redis://host:port/db"),
        (["--server", "tomcat"], "'tomcat' is not one of 'uvicorn', 'granian'"),
    ],
)
def test_serve_refuses_a_store_or_workers_it_cannot_run(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--port", str(free_port()), *args])
    assert result.exit_code != 0
    assert message in result.output


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_without_the_redis_extra_a_redis_store_names_the_extra() -> None:
    result = _python(
        "import sys\nsys.modules['redis'] = None  # as if the extra were missing\n"
        "from mockbankr.store import open_store\n"
        "try:\n    open_store('redis://127.0.0.1:6379/0')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    assert result.stdout.strip() == (
        "ConfigError --store redis://... needs the redis extra: pip install 'mockbankr[redis]'"
    )


def test_serving_from_memory_never_imports_redis_or_granian() -> None:
    result = _python(
        "import json, sys\nimport mockbankr.cli, mockbankr.serving\n"
        "from mockbankr.store import open_store\nopen_store('memory')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('redis', 'granian')))))"
    )
    assert (result.returncode, json.loads(result.stdout)) == (0, []), result.stderr


def test_status_reads_of_one_loop_iteration_share_one_command(redis_server: RedisServer) -> None:
    """The versions and polled jobs read by requests that start together are one script
    call (one command's client cost, not one per request), and each request still gets
    its own job."""
    redis_server.flush()

    async def scenario() -> None:
        store = RedisStore(redis_server.url)
        jobs = [record(f"job_{i}", owner=f"key:bk_{i}") for i in range(20)]
        for job in jobs:
            await store.add(job)
        await store.versions(None)  # loads the script into this Redis
        conn = await store._conn()
        sent: list[tuple[object, ...]] = []
        command = conn.syncs.command

        async def counted(*args: object) -> object:
            sent.append(args)
            return await command(*args)

        conn.syncs.command = counted

        async def poll(job: JobRecord | None) -> JobRecord | None:
            versions = await store.versions(None if job is None else job.id)
            assert set(versions) <= {"clock", "rules", "keys"}
            return None if job is None else await store.get(job.id)

        got = await asyncio.gather(*(poll(job) for job in [*jobs, None, None]))
        assert got == [*jobs, None, None]
        assert len(sent) == 1
        assert sent[0][-20:] == tuple(job.id for job in jobs)
        await store.aclose()

    asyncio.run(scenario())
