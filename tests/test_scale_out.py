"""Several ``mockbankr serve`` processes on one Redis behave as one server (issue 16).

Real processes on free loopback ports, real Redis (the session's ``redis-server``, or one
of a test's own where it is killed), so these are ``live`` and bounded: every wait has a
deadline, and every process is stopped by the PID this module started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from _redis_server import RedisServer, free_port, start_redis
from _x402_signing import make_payment_header
from eth_account import Account

pytestmark = pytest.mark.live

KEY = {"X-API-Key": "bk_scale"}
PROMPT = {"prompt": "What is the price of ETH?"}
#: Wall seconds a server may take to start (two spawn on a busy machine) or stop.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
RESET = {"json": {}}


class Served:
    """One ``mockbankr serve`` process of this test module."""

    def __init__(self, store: str, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "mockbankr.cli", "serve", "--port", str(self.port)]
        args += ["--store", store, "--seed", "1", *extra]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ}
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    self.process.stderr.read().decode() if self.process.stderr else ""
                )
            try:
                if self.http.get("/_health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mockbankr serve did not start on {self.url}")

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture(scope="module")
def pair(redis_server: RedisServer) -> Iterator[tuple[Served, Served]]:
    """Two servers on the session's Redis (flushed first)."""
    redis_server.flush()
    a = Served(redis_server.url)
    try:
        b = Served(redis_server.url)
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def servers(pair: tuple[Served, Served]) -> tuple[Served, Served]:
    a, b = pair
    assert a.http.post("/__mock/reset", **RESET).status_code == 200  # type: ignore[arg-type]
    return a, b


def test_a_job_created_on_one_is_read_and_cancelled_on_the_other(
    servers: tuple[Served, Served],
) -> None:
    a, b = servers
    job_id = a.http.post("/agent/prompt", json=PROMPT, headers=KEY).json()["jobId"]
    assert b.http.get(f"/agent/job/{job_id}", headers=KEY).json()["status"] in (
        "pending",
        "processing",
    )
    assert b.http.post(f"/agent/job/{job_id}/cancel", headers=KEY).json()["status"] == "cancelled"
    assert a.http.get(f"/agent/job/{job_id}", headers=KEY).json()["status"] == "cancelled"
    # the ledger is the same on both (here: empty), and so are the jobs
    assert a.http.get("/__mock/jobs").json() == b.http.get("/__mock/jobs").json()


def test_50_concurrent_cancels_over_both_make_one_transition(
    servers: tuple[Served, Served],
) -> None:
    a, b = servers
    job_id = a.http.post("/agent/prompt", json=PROMPT, headers=KEY).json()["jobId"]

    def cancel(i: int) -> dict[str, Any]:
        server = (a, b)[i % 2]
        with httpx.Client(base_url=server.url, timeout=10) as http:
            response = http.post(f"/agent/job/{job_id}/cancel", headers=KEY)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(cancel, range(50)))
    # One transition: every answer, on either server, shows the one cancel instant.
    assert {answer["cancelledAt"] for answer in answers} == {
        a.http.get(f"/agent/job/{job_id}", headers=KEY).json()["cancelledAt"]
    }


def test_one_payment_sent_to_both_at_once_is_accepted_once(
    servers: tuple[Served, Served],
) -> None:
    a, b = servers
    challenge = a.http.post("/v2/prompt", json=PROMPT)
    assert challenge.status_code == 402
    accept = challenge.json()["accepts"][0]
    payer = Account.from_key(b"\x0c" * 32)
    header = make_payment_header(payer, accept, now=time.time(), nonce=os.urandom(32))

    def pay(server: Served) -> int:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            return http.post("/v2/prompt", json=PROMPT, headers={"X-PAYMENT": header}).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(pay, [a, b, a, b]))
    assert statuses == [202, 402, 402, 402]
    for server in (a, b):
        assert server.http.get("/__mock/ledger").json()["count"] == 1


def test_a_rule_with_times_3_fires_exactly_three_times_across_both(
    servers: tuple[Served, Served],
) -> None:
    a, b = servers
    rule = {"match": {"path": "/wallet/me"}, "action": {"respond": {"status": 418}}, "times": 3}
    assert a.http.post("/__mock/rules", json=rule).status_code == 201

    def call(i: int) -> int:
        server = (a, b)[i % 2]
        with httpx.Client(base_url=server.url, timeout=10) as http:
            return http.get("/wallet/me", headers=KEY).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(call, range(20)))
    assert statuses.count(418) == 3
    assert statuses.count(200) == 17
    (listed,) = b.http.get("/__mock/rules").json()["rules"]
    assert listed["remaining"] == 0


def test_of_many_racing_prompts_over_both_exactly_the_daily_limit_is_accepted(
    servers: tuple[Served, Served],
) -> None:
    a, b = servers
    keys = {
        "accounts": {"few": {"plan": "club"}},
        "keys": [{"key": "bk_few", "account": "few", "dailyLimit": 7}],
    }
    assert a.http.put("/__mock/keys", json=keys).status_code == 200

    def prompt(i: int) -> tuple[int, dict[str, Any]]:
        with httpx.Client(base_url=(a, b)[i % 2].url, timeout=10) as http:
            response = http.post("/agent/prompt", json=PROMPT, headers={"X-API-Key": "bk_few"})
            return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(prompt, range(60)))
    assert sorted(status for status, _ in answers) == [202] * 7 + [429] * 53
    refused = [body for status, body in answers if status == 429]
    assert {(r["error"], r["limit"], r["used"], r["resetAt"]) for r in refused} == {
        ("Daily limit exceeded", 7, 7, refused[0]["resetAt"])
    }
    for server in (a, b):
        assert server.http.get("/__mock/keys").json()["accounts"]["few"]["used"] == 7


def test_rules_added_on_both_at_once_are_all_kept(servers: tuple[Served, Served]) -> None:
    a, b = servers

    def add(i: int) -> int:
        rule = {"match": {"path": f"/wallet/{i}"}, "action": {"respond": {"status": 418}}}
        with httpx.Client(base_url=(a, b)[i % 2].url, timeout=10) as http:
            return http.post("/__mock/rules", json=rule).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(add, range(40))) == [201] * 40
    for server in (a, b):
        rules = server.http.get("/__mock/rules").json()["rules"]
        paths = sorted(r["match"]["path"] for r in rules)
        assert paths == sorted(f"/wallet/{i}" for i in range(40))


def test_a_clock_advance_on_one_is_seen_on_the_other(servers: tuple[Served, Served]) -> None:
    a, b = servers
    before = b.http.get("/__mock/clock").json()
    assert a.http.post("/__mock/clock", json={"advance": 86_400}).status_code == 200
    after = b.http.get("/__mock/clock").json()
    assert after["unix"] - before["unix"] >= 86_400
    assert after["unix"] - before["unix"] < 86_400 + 60


def test_the_journal_ledger_and_verdicts_hold_the_requests_of_both(
    servers: tuple[Served, Served],
) -> None:
    a, b = servers
    patient, hasty = {"X-API-Key": "bk_patient"}, {"X-API-Key": "bk_hasty"}
    sent: list[tuple[str, str]] = []
    job_a = a.http.post("/agent/prompt", json=PROMPT, headers=patient).json()["jobId"]
    job_b = b.http.post("/agent/prompt", json=PROMPT, headers=hasty).json()["jobId"]
    sent += [("POST", "/agent/prompt")] * 2
    assert a.http.get(f"/agent/job/{job_a}", headers=patient).status_code == 200
    sent.append(("GET", f"/agent/job/{job_a}"))
    for _ in range(5):  # polls far faster than once a second: a poll-interval failure
        assert b.http.get(f"/agent/job/{job_b}", headers=hasty).status_code == 200
        sent.append(("GET", f"/agent/job/{job_b}"))
    paid = [_paid(a), _paid(b)]  # each a 402 then a 202
    sent += [("POST", "/v2/prompt")] * 4
    for server in (a, b):  # either one reads every request, answered by either
        entries = server.http.get("/__mock/journal").json()["entries"]
        assert sorted((e["method"], e["path"]) for e in entries) == sorted(sent)
        assert {e["state"] for e in entries} == {"done"}
        assert len({e["seq"] for e in entries}) == len(sent)
        ledger = server.http.get("/__mock/ledger").json()
        assert sorted(e["jobId"] for e in ledger["entries"]) == sorted(paid)
    # graded on a, from the requests b answered
    report = a.http.get("/__mock/verdicts", params={"owner": "bk_hasty"}).json()
    (client,) = report["clients"]
    assert client["requests"] == 6
    assert client["verdicts"]["poll-interval"]["verdict"] == "fail"
    assert client["verdicts"]["poll-interval"]["count"] >= 4


def _paid(server: Served) -> str:
    accept = server.http.post("/v2/prompt", json=PROMPT).json()["accepts"][0]
    header = make_payment_header(
        Account.from_key(b"\x0d" * 32), accept, now=time.time(), nonce=os.urandom(32)
    )
    response = server.http.post("/v2/prompt", json=PROMPT, headers={"X-PAYMENT": header})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    server.kill()


def test_jobs_ledger_rules_and_clock_survive_a_restart(own_redis: RedisServer) -> None:
    first = Served(own_redis.url, "--speed", "0")
    try:
        job_id = first.http.post("/agent/prompt", json=PROMPT, headers=KEY).json()["jobId"]
        paid = _paid(first)
        rule = {"match": {"path": "/wallet/me"}, "action": {"respond": {"status": 418}}, "times": 2}
        assert first.http.post("/__mock/rules", json=rule).status_code == 201
        assert first.http.get("/wallet/me", headers=KEY).status_code == 418  # one of two
        assert first.http.post("/__mock/clock", json={"advance": 7200}).status_code == 200
        state = [
            first.http.get(path).json()
            for path in ("/__mock/jobs", "/__mock/ledger", "/__mock/rules", "/__mock/clock")
        ]
    finally:
        first.stop()
    second = Served(own_redis.url, "--speed", "0")
    try:
        again = [
            second.http.get(path).json()
            for path in ("/__mock/jobs", "/__mock/ledger", "/__mock/rules", "/__mock/clock")
        ]
        assert again == state
        assert {j["jobId"] for j in again[0]["jobs"]} == {job_id, paid}
        assert again[2]["rules"][0]["remaining"] == 1
        assert second.http.get("/wallet/me", headers=KEY).status_code == 418
        assert second.http.get("/wallet/me", headers=KEY).status_code == 200
    finally:
        second.stop()


def test_a_lost_redis_is_a_503_and_the_server_serves_again(own_redis: RedisServer) -> None:
    server = Served(own_redis.url)
    try:
        job_id = server.http.post("/agent/prompt", json=PROMPT, headers=KEY).json()["jobId"]
        own_redis.kill()
        started = time.monotonic()
        for method, path in (("GET", f"/agent/job/{job_id}"), ("GET", "/__mock/clock")):
            response = server.http.request(method, path, headers=KEY)
            assert response.status_code == 503, response.text
            assert own_redis.url in response.json()["message"]
        assert time.monotonic() - started < 8  # refused quickly, never a hang
        own_redis.start()
        assert server.http.post("/agent/prompt", json=PROMPT, headers=KEY).status_code == 202
    finally:
        server.stop()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def test_two_workers_on_one_port_serve_one_population(redis_server: RedisServer) -> None:
    redis_server.flush()
    server = Served(redis_server.url, "--workers", "2")
    try:
        # uvicorn's supervisor runs the two workers (and a resource tracker at most)
        assert len(_children(server.process.pid)) >= 2
        ids = [
            server.http.post("/agent/prompt", json=PROMPT, headers=KEY).json()["jobId"]
            for _ in range(6)
        ]
        # each poll on a fresh connection: the kernel spreads them over both workers
        for job_id in ids * 3:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                assert http.get(f"/agent/job/{job_id}", headers=KEY).status_code == 200
        assert server.http.get("/__mock/jobs").json()["total"] == 6
    finally:
        server.stop()
    assert server.process.returncode == 0


def test_granian_serves_the_same_app_and_stops_on_sigterm() -> None:
    server = Served("memory", "--server", "granian")
    try:
        job_id = server.http.post("/agent/prompt", json=PROMPT, headers=KEY).json()["jobId"]
        assert server.http.get(f"/agent/job/{job_id}", headers=KEY).json()["jobId"] == job_id
        assert server.http.post("/__mock/clock", json={"advance": 600}).status_code == 200
        assert server.http.get(f"/agent/job/{job_id}", headers=KEY).json()["status"] == "completed"
        started = time.monotonic()
    finally:
        server.stop()
    assert time.monotonic() - started < 15  # the default --graceful-timeout (5 s) and a margin
