"""A stateful property test: the app against a plain dict model, on a VirtualClock."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from mockbankr import MemoryStore, Settings, VirtualClock, create_app
from mockbankr.core import Simulator
from mockbankr.testing import SyncClockTransport

ORDER = {"pending": 0, "processing": 1, "completed": 2, "failed": 2, "cancelled": 2}
TERMINAL = {"completed", "failed", "cancelled"}
PROMPTS = [
    "What is the price of ETH?",
    "Check my balance",
    "Swap 5 USDC for ETH",
    "Analyze ETH sentiment",
    "hello",
]


class JobLifecycle(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.store = MemoryStore()
        app = create_app(Settings(seed=3), clock=self.clock, rng=random.Random(3), store=self.store)
        self.sim: Simulator = app.state.simulator
        self.http = httpx.Client(
            transport=SyncClockTransport(app, self.clock),
            base_url="http://m",
            headers={"X-API-Key": "bk_model"},
        )
        # The model: job id -> its schedule, and the cancel time the model expects.
        self.model: dict[str, dict[str, Any]] = {}
        self.seen: dict[str, str] = {}

    def teardown(self) -> None:
        self.http.close()

    def expected(self, job_id: str) -> str:
        m = self.model[job_id]
        now = self.clock.now()
        if m["cancelled_at"] is not None and m["cancelled_at"] <= now:
            return "cancelled"
        if now < m["started_at"]:
            return "pending"
        if now < m["finished_at"]:
            return "processing"
        return "failed" if m["failed"] else "completed"

    @rule(target=jobs, prompt=st.sampled_from(PROMPTS))
    def submit(self, prompt: str) -> str:
        response = self.http.post("/agent/prompt", json={"prompt": prompt})
        assert response.status_code == 202
        job_id: str = response.json()["jobId"]
        record = asyncio.run(self.store.get(job_id))
        assert record is not None
        self.model[job_id] = {
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "failed": record.failed,
            "cancelled_at": None,
        }
        return job_id

    @rule(dt=st.floats(min_value=0.0, max_value=12.0, allow_nan=False))
    def advance_clock(self, dt: float) -> None:
        self.clock.advance(dt)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def jump_to_a_scheduled_instant(self, data: st.DataObject) -> None:
        # Land exactly on a transition, to prove it happens at its instant.
        job = self.model[data.draw(st.sampled_from(sorted(self.model)))]
        instant = data.draw(st.sampled_from([job["started_at"], job["finished_at"]]))
        if instant > self.clock.now():
            self.clock.set(instant)

    @rule(job_id=jobs)
    def poll(self, job_id: str) -> None:
        self.check(job_id)

    @rule(job_id=jobs)
    def cancel(self, job_id: str) -> None:
        expected = self.expected(job_id)
        response = self.http.post(f"/agent/job/{job_id}/cancel")
        if expected in {"pending", "processing"}:
            assert response.status_code == 200
            self.model[job_id]["cancelled_at"] = self.clock.now()
        elif expected == "cancelled":
            assert response.status_code == 200
        else:
            assert response.status_code == 400
            assert response.json()["error"] == f"Job already {expected}"

    def check(self, job_id: str) -> None:
        response = self.http.get(f"/agent/job/{job_id}")
        assert response.status_code == 200
        body = response.json()
        status = body["status"]
        assert status == self.expected(job_id), (status, self.clock.now(), self.model[job_id])
        previous = self.seen.get(job_id)
        if previous is not None:
            assert ORDER[status] >= ORDER[previous], "status moved backwards"
            if previous in TERMINAL:
                assert status == previous, "a terminal status changed"
        self.seen[job_id] = status
        assert body["cancellable"] is (status in {"pending", "processing"})
        assert ("response" in body) is (status == "completed")
        assert ("processingTime" in body) is (status == "completed")
        assert ("error" in body) is (status == "failed")
        assert ("cancelledAt" in body) is (status == "cancelled")
        assert ("completedAt" in body) is (status in {"completed", "failed"})

    @invariant()
    def every_job_matches_the_model(self) -> None:
        for job_id in self.model:
            self.check(job_id)


JobLifecycle.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestJobLifecycle = JobLifecycle.TestCase
