"""Per-policy metrics from the server's own records: the journal, the jobs and the ledger.

Pure: no clock, no I/O. Times are simulated seconds since the run's start. The client's
own bookkeeping is never read: what the client *saw* is derived from when it polled
(the journal) and what the job's schedule was then (the job record).

A job's **fate** (each job has exactly one, so they add up to ``jobs_created``):

* ``success``: a poll answered 200 after it completed; ``failure``: likewise, failed;
* ``cancelled``: it was cancelled before the client saw it end;
* ``still_running``: it had not ended when the run ended, and the client never saw it end;
* ``timeout``: it ended during the run, but the client stopped polling before it did
  (its deadline, its attempts, or an error it moved on from).

A job's **spend** is ``useful`` (the job whose completion answered its task), ``failed``
(seen failed: an honest failure), ``duplicate`` (another paid job for a task while one of
its jobs was live or had completed) or ``abandoned`` (paid, never seen to end).
``usdc_wasted`` is the duplicate plus the abandoned spend.

Example::

    metrics, rows = compute(tasks, requests, jobs, price_atomic=100_000, end=120.0)
    metrics["usdc_wasted"]
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mockbankr.experiments.plan import Task, task_of_prompt

__all__ = ["JobView", "RequestView", "compute", "distribution", "requests_per_second"]

_PROMPT_PATHS = ("/agent/prompt", "/v2/prompt")


@dataclass(frozen=True, slots=True)
class RequestView:
    """One journal entry: arrival and answer times (run seconds), method, path, status."""

    at: float
    answered: float
    method: str
    path: str
    status: int
    job_id: str | None


@dataclass(frozen=True, slots=True)
class JobView:
    """One job record: its schedule in run seconds (``finished`` is ``inf`` when stuck)."""

    id: str
    prompt: str
    category: str
    created: float
    started: float
    finished: float
    failed: bool
    cancelled: float | None

    def status(self, at: float) -> str:
        if self.cancelled is not None and self.cancelled <= at:
            return "cancelled"
        if at < self.started:
            return "pending"
        if at < self.finished:
            return "processing"
        return "failed" if self.failed else "completed"

    @property
    def ends(self) -> float:
        return self.finished if self.cancelled is None else min(self.finished, self.cancelled)


def _rank(ordered: Sequence[float], p: float) -> float:
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def distribution(values: Iterable[float]) -> dict[str, float | None]:
    """``p50``, ``p90``, ``p99`` and ``max`` (nearest rank), each ``None`` when empty."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    return {
        "p50": round(_rank(ordered, 50), 6),
        "p90": round(_rank(ordered, 90), 6),
        "p99": round(_rank(ordered, 99), 6),
        "max": round(ordered[-1], 6),
    }


def _usdc(atomic: int) -> float:
    return round(atomic / 1_000_000, 6)


def _job_of_request(req: RequestView) -> tuple[str, str] | None:
    """``(job id, "poll" | "cancel")`` of a job request."""
    parts = req.path.split("/")
    # "", "agent"|"v2", "job", id [, "cancel"]
    if len(parts) >= 4 and parts[2] == "job" and parts[1] in ("agent", "v2"):
        if len(parts) == 4 and req.method == "GET":
            return parts[3], "poll"
        if len(parts) == 5 and parts[4] == "cancel" and req.method == "POST":
            return parts[3], "cancel"
    return None


def compute(
    tasks: Sequence[Task],
    requests: Sequence[RequestView],
    jobs: Sequence[JobView],
    *,
    price_atomic: int,
    end: float,
    ledger_atomic: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The metrics of one policy's run, and one row per job (for ``jobs.csv``).

    ``end`` is when the run ended; ``ledger_atomic`` the ledger's total (x402), else the
    spend is the price times the jobs created.
    """
    by_id = {job.id: job for job in jobs}
    polls: dict[str, int] = defaultdict(int)
    seen_end: dict[str, tuple[float, str]] = {}
    for req in requests:
        found = _job_of_request(req)
        if found is None or found[0] not in by_id:
            continue
        job_id, kind = found
        job = by_id[job_id]
        if kind == "poll":
            polls[job_id] += 1
        if req.status != 200 or job_id in seen_end:
            continue
        status = "cancelled" if kind == "cancel" else job.status(req.answered)
        if status in ("completed", "failed", "cancelled"):
            seen_end[job_id] = (req.answered, status)

    fates: dict[str, str] = {}
    for job in jobs:
        seen = seen_end.get(job.id)
        if seen is not None and seen[1] == "completed":
            fates[job.id] = "success"
        elif seen is not None and seen[1] == "failed":
            fates[job.id] = "failure"
        elif job.cancelled is not None:
            fates[job.id] = "cancelled"
        elif job.finished > end:
            fates[job.id] = "still_running"
        else:
            fates[job.id] = "timeout"

    task_jobs: dict[tuple[int, int], list[JobView]] = defaultdict(list)
    for job in jobs:
        tag = task_of_prompt(job.prompt)
        if tag is not None:
            task_jobs[tag].append(job)
    spend: dict[str, str] = {}
    ttr: list[float] = []
    for task in tasks:
        mine = sorted(task_jobs.get((task.agent, task.index), []), key=lambda j: (j.created, j.id))
        useful = min(
            (j for j in mine if fates[j.id] == "success"),
            key=lambda j: seen_end[j.id][0],
            default=None,
        )
        if useful is not None:
            ttr.append(seen_end[useful.id][0] - task.at)
        for job in mine:
            if job is useful:
                spend[job.id] = "useful"
            elif fates[job.id] == "failure":
                spend[job.id] = "failed"
            elif any(
                other is not job
                and (
                    (other.created < job.ends and job.created < other.ends)
                    or (other.status(job.created) == "completed")
                )
                for other in mine
            ):
                spend[job.id] = "duplicate"
            else:
                spend[job.id] = "abandoned"
    for job in jobs:  # a job no task claims (not from this experiment's fleet)
        spend.setdefault(job.id, "failed" if fates[job.id] == "failure" else "abandoned")

    detection = [
        seen_end[j][0] - by_id[j].finished for j in seen_end if fates[j] in ("success", "failure")
    ]
    per_second: dict[int, int] = defaultdict(int)
    for req in requests:
        per_second[math.floor(req.at)] += 1
    limited = [req.at for req in requests if req.status == 429]
    counts = {
        kind: sum(1 for s in spend.values() if s == kind)
        for kind in ("useful", "failed", "duplicate", "abandoned")
    }
    fate_counts = {
        fate: sum(1 for f in fates.values() if f == fate)
        for fate in ("success", "failure", "cancelled", "timeout", "still_running")
    }
    spent = ledger_atomic if ledger_atomic is not None else price_atomic * len(jobs)
    successes = fate_counts["success"]
    wasted = price_atomic * (counts["duplicate"] + counts["abandoned"])
    poll_counts = [polls.get(job.id, 0) for job in jobs]
    ordered_polls = sorted(poll_counts)
    metrics: dict[str, Any] = {
        "tasks": len(tasks),
        "tasks_answered": len(ttr),
        "prompts_sent": sum(
            1
            for r in requests
            if r.method == "POST" and r.path in _PROMPT_PATHS and r.status != 402
        ),
        "jobs_created": len(jobs),
        "usdc_spent": _usdc(spent),
        "successes": successes,
        "failures": fate_counts["failure"],
        "cancelled": fate_counts["cancelled"],
        "timeouts": fate_counts["timeout"],
        "still_running": fate_counts["still_running"],
        "usdc_per_success": _usdc(round(spent / successes)) if successes else None,
        "usdc_wasted": _usdc(wasted),
        "usdc_split": {kind: _usdc(price_atomic * n) for kind, n in counts.items()},
        "jobs_by_spend": counts,
        "time_to_result_s": distribution(ttr),
        "detection_delay_s": distribution(detection),
        "polls_per_job": {
            "mean": round(sum(poll_counts) / len(poll_counts), 6) if poll_counts else None,
            "p99": _rank(ordered_polls, 99) if ordered_polls else None,
        },
        "requests": len(requests),
        "peak_requests_per_s": max(per_second.values(), default=0),
        "rate_limited": len(limited),
        "first_rate_limited_s": round(min(limited), 6) if limited else None,
        "server_errors": sum(1 for r in requests if 500 <= r.status <= 599),
        "end_s": round(end, 6),
    }
    task_at = {(task.agent, task.index): task.at for task in tasks}
    rows = [
        {
            "job_id": job.id,
            "agent": tag[0] if (tag := task_of_prompt(job.prompt)) else "",
            "task": tag[1] if tag else "",
            "task_at_s": task_at.get(tag, "") if tag else "",
            "category": job.category,
            "created_s": round(job.created, 6),
            "started_s": round(job.started, 6),
            "finished_s": round(job.finished, 6) if math.isfinite(job.finished) else "",
            "scheduled_outcome": "failed"
            if job.failed
            else ("completed" if math.isfinite(job.finished) else "stuck"),
            "cancelled_s": "" if job.cancelled is None else round(job.cancelled, 6),
            "polls": polls.get(job.id, 0),
            "seen_end_s": round(seen_end[job.id][0], 6) if job.id in seen_end else "",
            "fate": fates[job.id],
            "spend": spend[job.id],
        }
        for job in sorted(jobs, key=lambda j: (j.created, j.id))
    ]
    return metrics, rows


def requests_per_second(requests: Sequence[RequestView], end: float) -> list[int]:
    """Requests arriving in each simulated second ``[k, k+1)`` of the run."""
    counts = [0] * (max(0, math.ceil(end)) + 1)
    for req in requests:
        k = math.floor(req.at)
        if 0 <= k < len(counts):
            counts[k] += 1
    return counts
