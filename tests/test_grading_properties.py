"""Hypothesis: well-behaved request schedules pass every check; one injected mistake
fails exactly its check.

A schedule is built by a model client that follows the rules the checks encode: it
polls each job at its interval (at least 2 s) until a terminal answer, cancels a job it
gives up on before the 300 s timeout, waits out ``Retry-After`` and backs off
exponentially after other errors, never resends a prompt whose fate it does not know,
and looks an unknown job up once. Several such clients interleave in one journal.
Then one mistake of a given kind is injected into the first client's first job.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from mockbankr.grading import grade
from mockbankr.journal import Entry
from mockbankr.verdicts import CHECKS

START = 1_736_937_000.0
TIMEOUT = 300.0
WINDOW = 60.0


@dataclass(frozen=True)
class JobPlan:
    prompt: str
    duration: float
    outcome: str  # completed | failed | stuck
    interval: float
    latency: float
    refused_first: bool  # the prompt first gets a 503 (proof of refusal), then is resent
    errors: tuple[tuple[int, str, float], ...]  # (poll number, "503" | "429", Retry-After)
    gap_before: float
    look_up_unknown: bool


@dataclass
class Raw:
    method: str
    path: str
    status: int
    arrived: float
    answered: float
    job_id: str | None = None
    job_status: str | None = None
    prompt_hash: str | None = None
    retry_after: float | None = None


@dataclass
class ModelClient:
    """Sends requests in simulated time and notes them; ``inject`` names one mistake."""

    owner: str
    now: float
    inject: str | None = None
    sent: list[Raw] = field(default_factory=list)
    jobs: itertools.count[int] = field(default_factory=itertools.count)
    #: prompt -> (arrival, job id) of accepted prompts whose job did not fail or cancel
    live_prompts: dict[str, float] = field(default_factory=dict)
    abandoned_at: float | None = None

    def send(self, method: str, path: str, status: int, latency: float, **extra: object) -> Raw:
        raw = Raw(method, path, status, self.now, self.now + latency, **extra)  # type: ignore[arg-type]
        self.now = raw.answered
        self.sent.append(raw)
        return raw

    def run_job(self, plan: JobPlan, *, first: bool) -> None:
        inject = self.inject if first else None
        self.now += plan.gap_before
        if plan.look_up_unknown or (inject == "not-found-loop"):
            unknown = f"/agent/job/job_UNKNOWN{next(self.jobs)}"
            self.send("GET", unknown, 404, plan.latency)
            if inject == "not-found-loop":
                self.now += 2.0
                self.send("GET", unknown, 404, plan.latency)
        last_same = self.live_prompts.get(plan.prompt)
        if last_same is not None and self.now - last_same <= WINDOW:
            self.now = last_same + WINDOW + 0.5  # a prompt repeated on purpose, later
        if plan.refused_first or inject == "no-double-pay":
            status = 500 if inject == "no-double-pay" else 503
            self.send("POST", "/agent/prompt", status, plan.latency, prompt_hash=plan.prompt)
            self.now += 1.0  # the first retry's backoff (>= 1 s)
        job = f"job_{self.owner}_{next(self.jobs)}"
        accepted = self.send(
            "POST", "/agent/prompt", 202, plan.latency, job_id=job, prompt_hash=plan.prompt
        )
        submitted = accepted.arrived
        self.live_prompts[plan.prompt] = submitted
        ends = submitted + plan.duration if plan.outcome != "stuck" else float("inf")
        errors = {} if inject else {n: (kind, ra) for n, kind, ra in plan.errors}
        if inject == "retry-after":
            errors = {0: ("429", 5.0)}
        elif inject == "backoff":
            errors = {0: ("503", 0.0)}
        path = f"/agent/job/{job}"
        polls = 0
        failures = 0
        wait = plan.interval
        while True:
            if inject == "abandoned-job" and polls == 2:
                self.abandoned_at = self.now
                return  # walks away: no cancel
            due = self.now + wait
            if due - submitted > TIMEOUT - 1 or polls >= 150:
                self.now = due
                if inject == "deadline":
                    self.now = max(due, submitted + TIMEOUT + 5)
                    self.send("GET", path, 200, plan.latency, job_status="processing")
                    self.now += plan.interval
                self.send("POST", f"{path}/cancel", 200, plan.latency, job_id=job)
                self.live_prompts.pop(plan.prompt, None)
                return
            self.now = due
            polls += 1
            if polls - 1 in errors:
                kind, retry_after = errors[polls - 1]
                failures += 1
                self.send(
                    "GET",
                    path,
                    int(kind),
                    plan.latency,
                    retry_after=retry_after if kind == "429" else None,
                )
                if kind == "429":
                    wait = retry_after / 2 if inject == "retry-after" else retry_after
                else:
                    wait = 0.05 if inject == "backoff" else 2.0 ** (failures - 1)
                continue
            failures = 0
            status = "processing" if self.now < ends else plan.outcome
            self.send("GET", path, 200, plan.latency, job_status=status)
            if status != "processing":
                if status == "failed":
                    self.live_prompts.pop(plan.prompt, None)
                if inject == "stop-at-terminal":
                    self.now += plan.interval
                    self.send("GET", path, 200, plan.latency, job_status=status)
                return
            wait = plan.interval
            if inject == "poll-interval" and polls == 1:
                wait = 0.5


def job_plans(*, stuck: bool = False) -> st.SearchStrategy[JobPlan]:
    errors = st.lists(
        st.tuples(
            st.integers(0, 6),
            st.sampled_from(["503", "429"]),
            st.floats(0.5, 20.0, allow_nan=False),
        ),
        max_size=2,
        unique_by=lambda e: e[0],
    ).map(lambda found: tuple(e for e in found if not any(e[0] == o[0] + 1 for o in found)))
    return st.builds(
        JobPlan,
        prompt=st.sampled_from(["price", "swap", "analysis"]),
        duration=st.floats(0.5, 400.0, allow_nan=False),
        outcome=st.just("stuck") if stuck else st.sampled_from(["completed", "failed", "stuck"]),
        interval=st.floats(2.0, 30.0, allow_nan=False),
        latency=st.sampled_from([0.0, 0.05, 0.3]),
        refused_first=st.booleans(),
        errors=errors,
        gap_before=st.floats(0.0, 120.0, allow_nan=False),
        look_up_unknown=st.booleans(),
    )


@st.composite
def schedules(draw: st.DrawFn, inject: str | None = None) -> tuple[list[Entry], float]:
    """Entries of 1-3 interleaved clients and the grading time; client ``c0`` first."""
    first_job = draw(
        job_plans(stuck=inject in ("poll-interval", "deadline", "abandoned-job"))
        if inject != "stop-at-terminal"
        else job_plans().filter(lambda p: p.outcome != "stuck" and p.duration < 250)
    )
    clients = []
    for number in range(draw(st.integers(1, 3))):
        client = ModelClient(f"c{number}", START + draw(st.floats(0, 50)), inject=None)
        if number == 0:
            client.inject = inject
            client.run_job(first_job, first=True)
        for plan in draw(st.lists(job_plans(), max_size=3)):
            client.run_job(plan, first=False)
        clients.append(client)
    raws = [(client.owner, raw) for client in clients for raw in client.sent]
    raws.sort(key=lambda pair: (pair[1].answered, pair[1].arrived))
    entries = [
        Entry(
            seq=seq,
            method=raw.method,
            path=raw.path,
            status=raw.status,
            owner=owner,
            job_id=raw.job_id,
            sim_time=raw.arrived,
            wall_time=0.0,
            latency_ms=0.0,
            sim_latency_ms=(raw.answered - raw.arrived) * 1000,
            user_agent=f"model/{owner}",
            prompt_hash=raw.prompt_hash,
            retry_after=raw.retry_after,
            job_status=raw.job_status,
        )
        for seq, (owner, raw) in enumerate(raws, 1)
    ]
    end = max(raw.answered for _, raw in raws)
    abandoned = clients[0].abandoned_at
    if abandoned is not None:
        end = max(end, abandoned + TIMEOUT + 1)
    return entries, end + draw(st.floats(0.0, 1000.0))


@settings(max_examples=80, deadline=None)
@given(schedules())
def test_well_behaved_schedules_pass_every_check(schedule: tuple[list[Entry], float]) -> None:
    entries, now = schedule

    report = grade(entries, now=now)

    assert not report.failed, report.describe()
    assert {client.owner for client in report.clients} <= {"c0", "c1", "c2"}
    assert sum(client.requests for client in report.clients) == len(entries)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_one_injected_mistake_fails_exactly_its_check(data: st.DataObject) -> None:
    check = data.draw(st.sampled_from(CHECKS))
    entries, now = data.draw(schedules(inject=check))

    report = grade(entries, now=now)

    assert report.client("c0").failed == [check], report.describe()
    assert [c.owner for c in report.clients if c.failed] == ["c0"], report.describe()
