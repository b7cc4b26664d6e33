"""A run's records, read from the server itself: journal, jobs and ledger.

In-process they are read from the app (:func:`records_from_app`); live, through the
control plane (:func:`records_from_server`). Times become seconds since the run's start.
A journal is a ring: when it dropped entries of the run, ``coverage["covered"]`` is false
and says how many it kept, so no metric silently stands on a partial journal.

Example::

    records = await records_from_app(app, t0=t0, end=clock.now() - t0)
    records.coverage   # {"covered": True, "recorded": 1234, "sent": 1234}
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette

from mockbankr.experiments.metrics import JobView, RequestView
from mockbankr.journal import Entry, RequestJournal

__all__ = ["Records", "parse_iso", "records_from_app", "records_from_server"]

#: Jobs read per page from ``/__mock/jobs`` (its maximum).
_PAGE = 1000
#: The most jobs a live report reads (bounded, like everything that comes in).
MAX_JOBS = 1_000_000


@dataclass
class Records:
    """What the server recorded of one run, in run seconds (``t0`` is the run's start)."""

    t0: float
    end: float
    entries: list[Entry]
    jobs: list[JobView]
    ledger_atomic: int
    ledger_count: int
    coverage: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> list[RequestView]:
        t0 = self.t0
        return [
            RequestView(
                at=e.sim_time - t0,
                answered=e.sim_time - t0 + e.sim_latency_ms / 1000,
                method=e.method,
                path=e.path,
                status=e.status,
                job_id=e.job_id,
            )
            for e in self.entries
        ]


def _coverage(entries: list[Entry], first_seq: int, last_seq: int) -> dict[str, Any]:
    sent = max(0, last_seq - first_seq + 1)
    covered = len(entries) == sent and (not entries or entries[0].seq == first_seq)
    out: dict[str, Any] = {"covered": covered, "recorded": len(entries), "sent": sent}
    if not covered:
        out["note"] = (
            f"the journal kept {len(entries)} of the run's {sent} requests: request counts"
            " and what the client saw are computed from the kept ones only"
        )
    return out


async def records_from_app(app: Starlette, *, t0: float, end: float) -> Records:
    """The records of an in-process app (its journal, store and ledger) after a run."""
    journal: RequestJournal = app.state.journal
    sim = app.state.simulator
    await journal.sync()
    entries = journal.entries()
    last = entries[-1].seq if entries else 0
    jobs_raw, _ = await sim.store.scan(lambda job: True, offset=0, limit=MAX_JOBS)
    jobs = [
        JobView(
            id=j.id,
            prompt=j.prompt,
            category=j.category,
            created=j.created_at - t0,
            started=j.started_at - t0,
            finished=j.finished_at - t0,
            failed=j.failed,
            cancelled=None if j.cancelled_at is None else j.cancelled_at - t0,
        )
        for j in jobs_raw
    ]
    ledger = await sim.store.ledger()
    return Records(
        t0=t0,
        end=end,
        entries=entries,
        jobs=jobs,
        ledger_atomic=sum(entry.amount_atomic for entry in ledger),
        ledger_count=len(ledger),
        coverage=_coverage(entries, 1, last),
    )


def parse_iso(text: str) -> float:
    """Unix seconds of the control plane's ISO timestamps (``...T10:30:03.000Z``)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _entry(raw: dict[str, Any]) -> Entry:
    return Entry(
        seq=int(raw["seq"]),
        method=str(raw["method"]),
        path=str(raw["path"]),
        status=int(raw["status"]),
        owner=raw.get("owner"),
        job_id=raw.get("jobId"),
        sim_time=parse_iso(raw["simTime"]),
        wall_time=parse_iso(raw["wallTime"]),
        latency_ms=float(raw.get("latencyMs", 0.0)),
        sim_latency_ms=float(raw.get("simLatencyMs", 0.0)),
        fault=raw.get("fault"),
        user_agent=raw.get("userAgent"),
        prompt_hash=raw.get("promptHash"),
        retry_after=raw.get("retryAfter"),
        job_status=raw.get("jobStatus"),
        in_flight=raw.get("state") == "in-flight",
    )


def _job(raw: dict[str, Any], t0: float) -> JobView:
    schedule = raw["schedule"]
    finished = schedule.get("finishedAt")
    cancelled = schedule.get("cancelledAt")
    return JobView(
        id=str(raw["jobId"]),
        prompt=str(raw.get("prompt", "")),
        category=str(raw.get("category", "")),
        created=parse_iso(schedule["createdAt"]) - t0,
        started=parse_iso(schedule["startedAt"]) - t0,
        finished=math.inf if finished is None else parse_iso(finished) - t0,
        failed=raw.get("outcome") == "failed",
        cancelled=None if cancelled is None else parse_iso(cancelled) - t0,
    )


async def last_seq(http: httpx.AsyncClient) -> int:
    """The sequence number of the server's newest journal entry (0 when empty)."""
    response = await http.get("/__mock/journal", params={"limit": 1})
    response.raise_for_status()
    entries = response.json()["entries"]
    return int(entries[-1]["seq"]) if entries else 0


async def records_from_server(
    http: httpx.AsyncClient, *, t0: float | None = None, first_seq: int | None = None
) -> Records:
    """The records of a running server, read through ``/__mock``.

    ``t0`` is the run's start in the server's unix seconds (default: its first job or
    request); ``first_seq`` the journal sequence number of the run's first request
    (default: the journal's oldest entry, unless the journal is full: then it may have
    dropped older ones, and the coverage says so).
    """
    clock = (await http.get("/__mock/clock")).raise_for_status().json()
    journal = (await http.get("/__mock/journal")).raise_for_status().json()
    kept = journal["entries"]
    if first_seq is None:
        full = len(kept) >= int(journal.get("size", 0)) or int(journal.get("dropped", 0)) > 0
        first_seq = 1 if full or not kept else int(kept[0]["seq"])
    entries = [_entry(raw) for raw in kept if int(raw["seq"]) >= first_seq]
    jobs_raw: list[dict[str, Any]] = []
    while len(jobs_raw) < MAX_JOBS:
        page = (
            (await http.get("/__mock/jobs", params={"offset": len(jobs_raw), "limit": _PAGE}))
            .raise_for_status()
            .json()
        )
        jobs_raw += page["jobs"]
        if len(jobs_raw) >= int(page["total"]) or not page["jobs"]:
            break
    ledger = (await http.get("/__mock/ledger")).raise_for_status().json()
    if t0 is None:
        starts = [e.sim_time for e in entries[:1]]
        starts += [parse_iso(j["schedule"]["createdAt"]) for j in jobs_raw[:1]]
        t0 = min(starts) if starts else float(clock["unix"])
    last = entries[-1].seq if entries else first_seq - 1
    return Records(
        t0=t0,
        end=float(clock["unix"]) - t0,
        entries=entries,
        jobs=[_job(raw, t0) for raw in jobs_raw],
        ledger_atomic=int(ledger.get("totalAtomic", 0)),
        ledger_count=int(ledger.get("count", 0)),
        coverage=_coverage(entries, first_seq, last),
    )
