"""The app behind a real uvicorn on a free loopback port (time stays virtual)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from mockbankr import VirtualClock
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
