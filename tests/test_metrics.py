"""``GET /__mock/metrics``: parsed with prometheus-client's own parser, after a scripted run
(in-process, on a VirtualClock) every figure equals what the journal, the jobs and the ledger say.
"""

from __future__ import annotations

import collections
import datetime
import json
import random
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _redis_server import RedisServer
from _x402_signing import make_payment_header
from eth_account import Account
from prometheus_client.parser import text_string_to_metric_families

from mockbankr import JobStore, MemoryStore, Settings, VirtualClock, create_app
from mockbankr.counters import CounterSnapshot
from mockbankr.errors import StoreUnavailable
from mockbankr.redis_store import RedisStore
from mockbankr.testing import SyncClockTransport
from tests.conftest import KEY, OTHER_KEY

PAYER = Account.from_key("0x" + "11" * 32)
PRICE_USDC = 0.1
PROMPTS = ("What is the price of ETH?", "Swap 10 USDC for ETH", "What is my balance?")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _http(settings: Settings) -> tuple[httpx.Client, VirtualClock]:
    clock = VirtualClock()
    app = create_app(settings, clock=clock, rng=random.Random(1), store=MemoryStore())
    transport = SyncClockTransport(app, clock)
    return httpx.Client(transport=transport, base_url="http://mockbankr.local"), clock


@pytest.fixture
def web() -> Iterator[tuple[httpx.Client, VirtualClock]]:
    http, clock = _http(Settings(seed=1))
    with http:
        yield http, clock


@pytest.fixture(params=["one server, in memory", "two servers, one Redis"])
def servers(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> Iterator[list[tuple[httpx.Client, VirtualClock]]]:
    """One app on a MemoryStore, or two apps (two servers) sharing one Redis, one clock."""
    clock = VirtualClock()
    if request.param.startswith("one"):
        stores: list[JobStore] = [MemoryStore()]
    else:
        redis_server.flush()
        stores = [RedisStore(redis_server.url), RedisStore(redis_server.url)]
    clients = [
        httpx.Client(
            transport=SyncClockTransport(
                create_app(Settings(seed=1), clock=clock, rng=random.Random(i), store=store),
                clock,
            ),
            base_url="http://mockbankr.local",
        )
        for i, store in enumerate(stores)
    ]
    yield [(client, clock) for client in clients]
    for client in clients:
        client.close()


def scrape(http: httpx.Client) -> Samples:
    """Every sample of ``/__mock/metrics``, by name and sorted labels."""
    response = http.get("/__mock/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def by(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """The samples called ``name``, by the values of ``labels``."""
    return {
        tuple(dict(key)[label] for label in labels): value
        for (sample, key), value in samples.items()
        if sample == name
    }


def template(path: str) -> str:
    """The route template of a path, written out independently of the app's routes."""
    for pattern, route in (
        (r"/agent/job/[^/]+", "/agent/job/{job_id}"),
        (r"/v2/job/[^/]+", "/v2/job/{job_id}"),
        (r"/agent/job/[^/]+/cancel", "/agent/job/{job_id}/cancel"),
        (r"/(agent|v2)/prompt", path),
    ):
        if re.fullmatch(pattern, path):
            return route
    return "unmatched"


def seconds(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def pay(http: httpx.Client, clock: VirtualClock, prompt: str) -> str:
    challenge = http.post("/v2/prompt", json={"prompt": prompt})
    assert challenge.status_code == 402, challenge.text
    header = make_payment_header(PAYER, challenge.json()["accepts"][0], now=clock.now())
    paid = http.post("/v2/prompt", json={"prompt": prompt}, headers={"X-PAYMENT": header})
    assert paid.status_code == 202, paid.text
    job_id: str = paid.json()["jobId"]
    return job_id


def scripted_run(http: httpx.Client, clock: VirtualClock) -> None:
    """Submits, polls, two fault rules, a cancel, x402 payments, a 404; one job left live."""
    rules = [
        {
            "id": "flaky",
            "match": {"method": "GET", "path": "/agent/job/*"},
            "action": {"respond": {"status": 503, "body": {"error": "x", "message": "y"}}},
            "times": 3,
        },
        {
            "id": "slow",
            "match": {"method": "POST", "path": "/agent/prompt"},
            "action": {"delay": {"seconds": 2}},
            "times": 1,
        },
    ]
    for rule in rules:
        assert http.post("/__mock/rules", json=rule).status_code == 201
    jobs = []
    for i, prompt in enumerate(PROMPTS * 2):
        key = KEY if i % 2 else OTHER_KEY
        response = http.post("/agent/prompt", json={"prompt": prompt}, headers={"X-API-Key": key})
        assert response.status_code == 202, response.text
        jobs.append((response.json()["jobId"], key))
    cancelled, key = jobs[1]
    assert http.post(f"/agent/job/{cancelled}/cancel", headers={"X-API-Key": key}).is_success
    for _ in range(4):
        clock.advance(1.5)
        for job_id, key in jobs:
            http.get(f"/agent/job/{job_id}", headers={"X-API-Key": key})
    pay(http, clock, PROMPTS[0])
    pay(http, clock, PROMPTS[0])  # a duplicate payment
    assert http.get("/agent/nothing", headers={"X-API-Key": KEY}).status_code == 404
    clock.advance(3600)
    for job_id, key in jobs:
        assert http.get(f"/agent/job/{job_id}", headers={"X-API-Key": key}).status_code == 200
    live = http.post("/agent/prompt", json={"prompt": PROMPTS[0]}, headers={"X-API-Key": KEY})
    assert live.status_code == 202


def other_run(http: httpx.Client) -> None:
    """A second server's share: a prompt, polls, a rule of its own, a 404."""
    rule = {
        "id": "garbled",
        "match": {"method": "GET", "path": "/agent/job/*"},
        "action": {"malformed": {}},
        "times": 1,
    }
    assert http.post("/__mock/rules", json=rule).status_code == 201
    response = http.post("/agent/prompt", json={"prompt": PROMPTS[1]}, headers={"X-API-Key": KEY})
    assert response.status_code == 202
    for _ in range(3):
        http.get(f"/agent/job/{response.json()['jobId']}", headers={"X-API-Key": KEY})
    assert http.get("/v2/nothing").status_code == 404


def test_after_a_scripted_run_the_metrics_equal_the_records(
    servers: list[tuple[httpx.Client, VirtualClock]],
) -> None:
    """With two servers on one Redis, each one's scrape is the whole population's."""
    http, clock = servers[0]
    scripted_run(http, clock)
    for other, _ in servers[1:]:
        other_run(other)
    # One journal, whatever the number of servers: each one reads the whole population's.
    # (In process, a server's loop runs only while it answers: a read on each first has
    # each write what it journaled last, as a live server does right after answering.)
    for web in servers:
        assert web[0].get("/__mock/journal").is_success
    journals = [web[0].get("/__mock/journal").json()["entries"] for web in servers]
    assert all(listed == journals[0] for listed in journals[1:])
    entries = journals[0]
    jobs = http.get("/__mock/jobs", params={"limit": 1000}).json()["jobs"]
    ledger = http.get("/__mock/ledger").json()
    scrapes = [scrape(web[0]) for web in servers]
    assert all(samples == scrapes[0] for samples in scrapes)
    samples = scrapes[0]

    # Requests by route template and status: the journals', entry for entry.
    journal = collections.Counter((template(e["path"]), str(e["status"])) for e in entries)
    assert by(samples, "mockbankr_requests_total", "route", "status") == journal
    assert journal["/agent/job/{job_id}", "503"] == 3

    # Fault firings by rule: each rule's action kind is its own, so the journal tells them apart.
    faults = collections.Counter(e["fault"] for e in entries if e["fault"])
    firings = by(samples, "mockbankr_fault_firings_total", "rule")
    expected = {("flaky",): faults["respond"], ("slow",): faults["delay"]}
    if len(servers) > 1:
        expected["garbled",] = faults["malformed"]
        assert faults["malformed"] == 1
    assert firings == expected
    assert (firings["flaky",], firings["slow",]) == (3, 1)

    # Jobs: created by category, finished by category and status, live, from the job list;
    # and as many as the journal's accepted prompts.
    created = collections.Counter((job["category"],) for job in jobs)
    assert by(samples, "mockbankr_jobs_created_total", "category") == created
    accepted = [e for e in entries if e["path"].endswith("/prompt") and e["status"] == 202]
    assert sum(created.values()) == len(accepted) == len(PROMPTS) * 2 + 3 + len(servers) - 1
    final = collections.Counter(
        (job["category"], job["status"])
        for job in jobs
        if job["status"] in ("completed", "failed", "cancelled")
    )
    assert by(samples, "mockbankr_jobs_finished_total", "category", "status") == final
    cancels = [e for e in entries if e["path"].endswith("/cancel") and e["status"] == 200]
    assert sum(n for (_, status), n in final.items() if status == "cancelled") == len(cancels)
    live = collections.Counter(
        (job["category"], job["status"])
        for job in jobs
        if job["status"] in ("pending", "processing")
    )
    assert by(samples, "mockbankr_jobs_live", "category", "status") == live
    assert live["price", "pending"] == 1

    # USDC: the ledger's total for x402; the price of every API-key job.
    spent = by(samples, "mockbankr_spent_usdc_total", "payment")
    assert spent[("x402",)] == pytest.approx(float(ledger["totalUsdc"])) == 2 * PRICE_USDC
    keyed = sum(1 for e in accepted if e["path"] == "/agent/prompt")
    assert spent[("api_key",)] == pytest.approx(keyed * PRICE_USDC)

    # The histogram: every finished job once, its simulated submit-to-terminal seconds summed.
    ended = [
        seconds(job["schedule"]["cancelledAt"] or job["schedule"]["finishedAt"])
        - seconds(job["schedule"]["createdAt"])
        for job in jobs
        if job["status"] in ("completed", "failed", "cancelled")
    ]
    name = "mockbankr_job_duration_simulated_seconds"
    assert samples[f"{name}_count", ()] == len(ended) == sum(final.values())
    assert samples[f"{name}_sum", ()] == pytest.approx(sum(ended), abs=1e-3 * len(ended))
    buckets = by(samples, f"{name}_bucket", "le")
    for le, count in buckets.items():
        bound = float(le[0])
        assert count == sum(1 for s in ended if s <= bound), le
    assert buckets["+Inf",] == len(ended)


def test_a_reset_starts_the_counts_again(web: tuple[httpx.Client, VirtualClock]) -> None:
    http, clock = web
    scripted_run(http, clock)
    assert http.post("/__mock/reset", json={}).status_code == 200
    samples = scrape(http)
    assert by(samples, "mockbankr_requests_total", "route", "status") == {}
    assert by(samples, "mockbankr_fault_firings_total", "rule") == {}
    assert by(samples, "mockbankr_jobs_created_total", "category") == {}
    http.get("/agent/job/job_nope", headers={"X-API-Key": KEY})
    after = by(scrape(http), "mockbankr_requests_total", "route", "status")
    assert after == {("/agent/job/{job_id}", "404"): 1}


def test_no_metrics_counts_nothing_and_answers_404() -> None:
    clock = VirtualClock()
    app = create_app(
        Settings(seed=1, metrics=False), clock=clock, rng=random.Random(1), store=MemoryStore()
    )
    assert app.state.counters is None
    with httpx.Client(
        transport=SyncClockTransport(app, clock), base_url="http://mockbankr.local"
    ) as http:
        http.post("/agent/prompt", json={"prompt": "hi"}, headers={"X-API-Key": KEY})
        response = http.get("/__mock/metrics")
        assert response.status_code == 404
        assert response.json()["error"] == "Metrics off"
        assert "--no-metrics" in response.json()["message"]


def test_the_metrics_are_the_control_planes() -> None:
    """Guarded like /__mock/*: a token, when configured, is required."""
    token = "s3cret-token"
    http, _ = _http(Settings(seed=1, admin_token=token))
    with http:
        assert http.get("/__mock/metrics").status_code == 401
        ok = http.get("/__mock/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert "mockbankr_requests_total" in ok.text


def test_building_the_app_does_not_import_prometheus_client() -> None:
    probe = (
        "import random, sys\n"
        "from mockbankr import MemoryStore, Settings, VirtualClock, create_app\n"
        "create_app(Settings(seed=1), clock=VirtualClock(), rng=random.Random(1),"
        " store=MemoryStore())\n"
        "print(json.dumps('prometheus_client' in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import json\n" + probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: Any = json.loads(result.stdout)
    assert loaded is False


@pytest.mark.anyio
async def test_a_lost_redis_keeps_the_counts_for_the_next_flush() -> None:
    """A flush Redis cannot take raises nothing on the request's path and loses nothing."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    counters = RedisStore(f"redis://127.0.0.1:{port}/0").request_counters()
    counters.count_request("/agent/prompt", 202)
    counters.count_fault("r1")
    await counters.flush()
    assert counters.flush_due
    with pytest.raises(StoreUnavailable):
        await counters.snapshot()  # a scrape answers 503
    assert counters.flush_due


@pytest.mark.anyio
async def test_redis_counters_add_up_across_servers(redis_server: RedisServer) -> None:
    redis_server.flush()
    first = RedisStore(redis_server.url).request_counters()
    second = RedisStore(redis_server.url).request_counters()
    for counters in (first, second, second):
        counters.count_request("/agent/job/{job_id}", 200)
        counters.count_fault("r1")
        await counters.flush()
        assert not counters.flush_due
    # Counted, not flushed yet: a scrape of this server flushes it first.
    second.count_request("unmatched", 0)
    for counters in (second, first):
        snapshot = await counters.snapshot()
        assert snapshot.requests == {("/agent/job/{job_id}", 200): 3, ("unmatched", 0): 1}
        assert snapshot.faults == {"r1": 3}
    await first.clear()
    assert await second.snapshot() == CounterSnapshot()
