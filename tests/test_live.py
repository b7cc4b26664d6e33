"""The app behind a real uvicorn on a free loopback port (time stays virtual)."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from mockbankr import MemoryStore, Settings, VirtualClock, create_app
from mockbankr.serving import H11_MAX_HEADER_BYTES, GracefulServer
from mockbankr.testing import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer(clock=VirtualClock(), seed=4) as live:
        yield live


def test_a_job_runs_its_course_over_real_http(server: LiveServer) -> None:
    clock = server.clock
    assert isinstance(clock, VirtualClock)
    with httpx.Client(base_url=server.base_url, headers={"X-API-Key": "bk_live"}) as http:
        assert http.get("/_health").json() == {"status": "ok"}
        submitted = http.post("/agent/prompt", json={"prompt": "What is the price of ETH?"})
        assert submitted.status_code == 202
        job_id = submitted.json()["jobId"]
        seen = []
        for _ in range(60):  # 60 polls, 0.1 simulated s apart: past the 5 s maximum
            seen.append(http.get(f"/agent/job/{job_id}").json()["status"])
            clock.advance(0.1)
        assert seen[0] == "pending"
        assert "processing" in seen
        assert seen[-1] in {"completed", "failed"}
        final = http.get(f"/agent/job/{job_id}").json()
        assert 2000 <= final.get("processingTime", 2000) <= 5000

        live = http.post("/agent/prompt", json={"prompt": "Analyze ETH"}).json()["jobId"]
        assert http.post(f"/agent/job/{live}/cancel").json()["status"] == "cancelled"
        assert http.get("/nope").status_code == 404


def test_a_drop_fault_is_not_logged_as_a_server_error(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    uvicorn_errors = logging.getLogger("uvicorn.error")  # uvicorn's own, not propagated
    uvicorn_errors.addHandler(caplog.handler)
    try:
        with httpx.Client(base_url=server.base_url) as http:
            rule = {"match": {"path": "/_health"}, "action": {"drop": {}}, "times": 3}
            assert http.post("/__mock/rules", json=rule).status_code == 201
            for _ in range(3):
                with pytest.raises(httpx.RemoteProtocolError):
                    http.get("/_health")
            assert http.get("/_health").json() == {"status": "ok"}  # the rule is spent
    finally:
        uvicorn_errors.removeHandler(caplog.handler)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_with_h11_uvicorn_refuses_headers_over_its_bound_unread() -> None:
    # httptools has no header bound (see the README's limits); h11 has one, and our
    # servers set it: a 1 MiB header is refused by uvicorn before the app reads it (h11
    # counts what it buffers of an unfinished head; a head that arrives whole in one read
    # goes to the app, whose own limit answers 431).
    clock = VirtualClock()
    app = create_app(Settings(seed=1), clock=clock, rng=random.Random(1), store=MemoryStore())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, http="h11", log_level="critical", lifespan="off")
    server = GracefulServer(config, lifetime=app.state.lifetime, graceful_timeout=1)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        tick = threading.Event()
        for _ in range(500):
            if server.started:
                break
            tick.wait(0.01)
        assert config.h11_max_incomplete_event_size == H11_MAX_HEADER_BYTES
        big = b"GET /_health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (1024 * 1024)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(big + b"\r\n\r\n")
            answer = client.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert app.state.journal.entries() == []  # the app never saw it
        small = httpx.get(f"http://127.0.0.1:{port}/_health", headers={"X-Big": "a" * 1000})
        assert small.status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
