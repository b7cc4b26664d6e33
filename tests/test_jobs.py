"""The pure job functions: status and body as functions of time."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from mockbankr.jobs import JobRecord, body_changes_at, cancelled, job_body, status_of
from mockbankr.timing import load_timing

TABLE = load_timing()


def sampled(category: str, seed: int, created: float = 1000.0) -> JobRecord:
    sample = TABLE[category].sample(random.Random(seed))
    return JobRecord(
        id="job_X",
        owner="key:k",
        prompt="p",
        thread_id=None,
        category=category,
        created_at=created,
        started_at=created + sample.pending,
        finished_at=created + sample.total,
        failed=sample.failed,
        variant=sample.variant,
    )


@given(
    st.sampled_from(sorted(TABLE.categories)),
    st.integers(0, 2**32),
    st.floats(0, 40),
    st.floats(0, 1),
    st.one_of(st.none(), st.floats(0, 40)),
)
def test_the_body_does_not_change_before_body_changes_at(
    category: str, seed: int, offset: float, fraction: float, cancel_at: float | None
) -> None:
    job = sampled(category, seed)
    if cancel_at is not None:
        result = cancelled(job, job.created_at + cancel_at)
        job = result if isinstance(result, JobRecord) else job
    now = job.created_at + offset
    until = body_changes_at(job, TABLE[category], now)
    assert until > now
    later = now + fraction * (min(until, now + 100) - now)
    if later < until:
        assert job_body(job, TABLE[category], later) == job_body(job, TABLE[category], now)
    if until != float("inf"):
        # ... and it does change at that instant.
        assert job_body(job, TABLE[category], until) != job_body(job, TABLE[category], now)


@given(st.sampled_from(sorted(TABLE.categories)), st.integers(0, 2**32), st.floats(0, 40))
def test_status_follows_the_schedule(category: str, seed: int, offset: float) -> None:
    job = sampled(category, seed)
    now = job.created_at + offset
    status = status_of(job, now).value
    if now < job.started_at:
        assert status == "pending"
    elif now < job.finished_at:
        assert status == "processing"
    else:
        assert status == ("failed" if job.failed else "completed")
