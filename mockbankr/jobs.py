"""The job record, and every response field as a pure function of time.

A job never runs. At submission its schedule is sampled once and stored as one
small immutable record; ``status_of(job, now)`` and ``job_body(job, category,
now)`` derive everything else. Nothing runs in the background, a status read is
O(1), and a transition happens exactly at its scheduled instant however late or
often anyone polls.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Literal

import msgspec

from mockbankr.clock import iso
from mockbankr.timing import Category

__all__ = [
    "FOREVER",
    "JobFault",
    "JobRecord",
    "JobStatus",
    "READ_ONLY_RESPONSE",
    "body_changes_at",
    "cancel_body",
    "cancelled",
    "forced",
    "job_body",
    "read_only_job",
    "status_of",
    "thread_of",
]

#: ``finished_at`` of a job that never finishes (a ``stuck`` fault).
FOREVER = math.inf


class JobStatus(enum.StrEnum):
    """The lifecycle: ``pending -> processing -> completed | failed | cancelled``."""

    #: Accepted and queued; the agent has not started. Cancellable.
    PENDING = "pending"
    #: The agent is working on it; status updates appear. Cancellable.
    PROCESSING = "processing"
    #: Finished with a response (and maybe transactions and rich data). Terminal.
    COMPLETED = "completed"
    #: Finished with an error. Still HTTP 200 and still paid for. Terminal.
    FAILED = "failed"
    #: Cancelled by its owner while pending or processing. Terminal.
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class JobFault(msgspec.Struct, frozen=True, gc=False):
    """A lifecycle fault injected by a rule.

    ``regress``: the first poll during processing answers ``pending`` once more.
    ``vanish``: from simulated time ``at`` on, the job answers 404.
    """

    kind: Literal["regress", "vanish"]
    at: float = 0.0


class JobRecord(msgspec.Struct, frozen=True, gc=False):
    """Everything stored for one job: plain data, about 200 bytes.

    Times are simulated unix seconds. ``thread_id`` is ``None`` when the job
    started its own thread, whose id is then derived from the job id (see
    :func:`thread_of`), which saves storing it. ``error`` overrides the
    category's error text for a forced failure; ``fault`` is a rule's lifecycle
    fault. ``finished_at`` is :data:`FOREVER` for a job stuck in processing.

    Example::

        job = JobRecord("job_A", "key:bk_1", "hi", None, "general",
                        created_at=0.0, started_at=1.0, finished_at=4.0)
        status_of(job, 2.0) is JobStatus.PROCESSING
    """

    id: str
    owner: str
    prompt: str
    thread_id: str | None
    category: str
    created_at: float
    started_at: float
    finished_at: float
    failed: bool = False
    variant: int = 0
    error: str | None = None
    cancelled_at: float | None = None
    fault: JobFault | None = None
    #: Created by a read-only key in a category that transacts: it completes with
    #: :data:`READ_ONLY_RESPONSE` and no ``transactions`` (docs/wire.md 1.8).
    read_only: bool = False


#: What a read-only key's transaction prompt answers (docs/wire.md 1.8: the agent "explains
#: that the key is read-only"; the wording is ours).
READ_ONLY_RESPONSE = (
    "This API key is read-only, so I can't execute transactions with it. I can still check"
    " prices, balances and your portfolio; to transact, use a read-write key"
    " (bankr.bot/api-keys)."
)


def read_only_job(job: JobRecord, category: Category) -> JobRecord:
    """The record of a job submitted with a read-only key.

    A prompt of a category without transactions is unchanged: the agent's read
    tools answer it. One that would transact completes (the agent declines
    rather than fails) with :data:`READ_ONLY_RESPONSE`.
    """
    if not category.transactions:
        return job
    return msgspec.structs.replace(job, read_only=True, failed=False, variant=0, error=None)


def thread_of(job: JobRecord) -> str:
    """The job's thread id: the one it was given, or ``thr_`` plus its own id's suffix."""
    return job.thread_id if job.thread_id is not None else "thr_" + job.id[4:]


def status_of(job: JobRecord, now: float) -> JobStatus:
    """The job's status at simulated time ``now``.

    Example::

        status_of(job, job.finished_at) in (JobStatus.COMPLETED, JobStatus.FAILED)
    """
    if job.cancelled_at is not None and job.cancelled_at <= now:
        return JobStatus.CANCELLED
    if now < job.started_at:
        return JobStatus.PENDING
    if now < job.finished_at:
        return JobStatus.PROCESSING
    return JobStatus.FAILED if job.failed else JobStatus.COMPLETED


def cancelled(job: JobRecord, now: float) -> JobRecord | JobStatus:
    """The record after a cancel at ``now``, or the status that prevents it.

    A pending or processing job gets ``cancelled_at = now``; an already cancelled
    job is returned unchanged (cancel is idempotent); for a completed or failed
    job the terminal status is returned instead of a record.
    """
    status = status_of(job, now)
    if status is JobStatus.CANCELLED:
        return job
    if status.terminal:
        return status
    return msgspec.structs.replace(job, cancelled_at=now)


def forced(
    job: JobRecord,
    now: float,
    *,
    outcome: Literal["completed", "failed"] | None = None,
    error: str | None = None,
    finish_at: float | None = None,
) -> JobRecord | JobStatus:
    """The record with a forced outcome and/or finish time, or the terminal status
    that prevents it (only a job that has not finished can be steered).
    """
    status = status_of(job, now)
    if status.terminal:
        return status
    changes: dict[str, Any] = {}
    if outcome is not None:
        changes.update(failed=outcome == "failed", variant=0, error=error)
    if finish_at is not None:
        finish_at = max(finish_at, now)
        changes.update(finished_at=finish_at, started_at=min(job.started_at, finish_at))
    return msgspec.structs.replace(job, **changes)


def _update_times(job: JobRecord, category: Category) -> list[float]:
    """When each status update appears: evenly over the processing phase."""
    count = len(category.status_updates)
    span = (job.finished_at - job.started_at) if math.isfinite(job.finished_at) else 60.0
    return [job.started_at + i * span / count for i in range(count)]


def _updates(job: JobRecord, category: Category, until: float) -> list[dict[str, str]]:
    """Status updates revealed by ``until``."""
    if until < job.started_at:
        return []
    return [
        {"message": message, "timestamp": iso(at)}
        for message, at in zip(category.status_updates, _update_times(job, category), strict=True)
        if at <= until
    ]


def body_changes_at(job: JobRecord, category: Category, now: float) -> float:
    """The next instant after ``now`` at which :func:`job_body` can change.

    Until then the body stays byte for byte the same (a finished job's never
    changes: ``inf``), so it can be encoded once. A change of the record itself
    (a cancel, a forced outcome) is a new record, and not covered here.

    Example::

        body_changes_at(job, category, job.created_at) == job.started_at
    """
    if status_of(job, now).terminal:
        return math.inf
    ends = job.finished_at if job.cancelled_at is None else min(job.finished_at, job.cancelled_at)
    if now < job.started_at:
        return min(job.started_at, ends)
    return min([at for at in _update_times(job, category) if at > now] + [ends])


def job_body(job: JobRecord, category: Category, now: float) -> dict[str, Any]:
    """The ``GET /agent/job/{id}`` body at ``now``, fields present per status (docs/wire.md 1.4).

    Always: ``success, jobId, threadId, status, prompt, createdAt, cancellable,
    statusUpdates``. Once started: ``startedAt``. Completed: ``completedAt,
    processingTime, response, richData, transactions``. Failed: ``completedAt,
    error``. Cancelled: ``cancelledAt``.
    """
    status = status_of(job, now)
    body: dict[str, Any] = {
        "success": True,
        "jobId": job.id,
        "threadId": thread_of(job),
        "status": status.value,
        "prompt": job.prompt,
        "createdAt": iso(job.created_at),
        "cancellable": not status.terminal,
    }
    until = min(now, job.finished_at)
    if status is JobStatus.CANCELLED and job.cancelled_at is not None:
        until = job.cancelled_at
    body["statusUpdates"] = _updates(job, category, until)
    if until >= job.started_at:
        body["startedAt"] = iso(job.started_at)
    if status is JobStatus.COMPLETED:
        body["completedAt"] = iso(job.finished_at)
        body["processingTime"] = round((job.finished_at - job.created_at) * 1000)
        if job.read_only:
            body["response"] = READ_ONLY_RESPONSE
            body["richData"] = []
        else:
            body["response"] = category.responses[job.variant % len(category.responses)]
            body["richData"] = list(category.rich_data)
            body["transactions"] = list(category.transactions)
    elif status is JobStatus.FAILED:
        body["completedAt"] = iso(job.finished_at)
        body["error"] = job.error or category.errors[job.variant % len(category.errors)]
    elif job.cancelled_at is not None:  # status is CANCELLED
        body["cancelledAt"] = iso(job.cancelled_at)
    return body


def cancel_body(job: JobRecord) -> dict[str, Any]:
    """The ``POST .../cancel`` success body (docs/wire.md 1.5) of a cancelled job."""
    assert job.cancelled_at is not None
    return {
        "success": True,
        "jobId": job.id,
        "status": JobStatus.CANCELLED.value,
        "prompt": job.prompt,
        "createdAt": iso(job.created_at),
        "cancelledAt": iso(job.cancelled_at),
    }
