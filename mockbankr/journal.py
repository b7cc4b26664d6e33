"""The request journal: what arrived, what it got, and when, in a bounded ring buffer.

Besides the request line and the status, each entry keeps what grading a client's
behaviour over time needs (:mod:`mockbankr.grading`): its User-Agent, a short hash of
a prompt (never the prompt), the ``Retry-After`` it was answered with, the job it
created or read, and the job status a poll answered.
"""

from __future__ import annotations

import collections
import fnmatch
import hashlib
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from mockbankr.clock import iso, wall_time

__all__ = ["Entry", "Journal", "prompt_key"]


def prompt_key(prompt: str) -> str:
    """A short stable identity of a prompt's text (16 hex digits), kept instead of the text.

    Example::

        prompt_key("What is the price of ETH?")  # the same 16 hex digits in every run
    """
    return hashlib.blake2b(prompt.encode("utf-8", "replace"), digest_size=8).hexdigest()


class Entry(msgspec.Struct, frozen=True):
    """One request. ``owner`` is the API key or the wallet.

    ``sim_time`` and ``wall_time`` are when it arrived (unix seconds);
    ``latency_ms`` is wall time to answer, ``sim_latency_ms`` simulated time
    (a ``delay`` rule shows there). ``status`` is 0 when no answer was sent
    (a ``drop``, a ``hang`` the client gave up on). ``job_id`` is the job a
    request read or cancelled, or the one a prompt created. ``user_agent`` is what
    the client sent; ``prompt_hash`` is :func:`prompt_key` of a prompt's text;
    ``retry_after`` the seconds of an error answer's ``Retry-After``; ``job_status``
    the status a status poll answered.
    """

    seq: int
    method: str
    path: str
    status: int
    owner: str | None
    job_id: str | None
    sim_time: float
    wall_time: float
    latency_ms: float
    sim_latency_ms: float = 0.0
    fault: str | None = None
    user_agent: str | None = None
    prompt_hash: str | None = None
    retry_after: float | None = None
    job_status: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "owner": self.owner,
            "jobId": self.job_id,
            "simTime": iso(self.sim_time),
            "wallTime": iso(self.wall_time),
            "latencyMs": round(self.latency_ms, 3),
            "simLatencyMs": round(self.sim_latency_ms, 3),
            "fault": self.fault,
            "userAgent": self.user_agent,
            "promptHash": self.prompt_hash,
            "retryAfter": self.retry_after,
            "jobStatus": self.job_status,
        }


_FILTERS = ("method", "path", "status", "owner", "job_id", "fault")


_JOB_PATH = re.compile(r"^/(?:agent|v2)/job/([^/]+)")

#: What :meth:`Journal.record` keeps per request: atomic values only, so the garbage
#: collector untracks the tuple and a full journal costs it nothing to scan.
_Raw = tuple[
    int,
    str,
    str,
    int,
    str | None,
    str | None,
    float,
    float,
    float,
    float,
    str | None,
    str | None,
    str | None,
    float | None,
    str | None,
]


def _entry(raw: _Raw) -> Entry:
    (
        seq,
        method,
        path,
        status,
        owner,
        job_id,
        arrived,
        answered,
        wall,
        latency,
        fault,
        user_agent,
        prompt_hash,
        retry_after,
        job_status,
    ) = raw
    if job_id is None and (found := _JOB_PATH.match(path)):
        job_id = found.group(1)
    return Entry(
        seq=seq,
        method=method,
        path=path,
        status=status,
        owner=owner,
        job_id=job_id,
        sim_time=arrived,
        wall_time=wall,
        latency_ms=latency * 1000,
        sim_latency_ms=(answered - arrived) * 1000,
        fault=fault,
        user_agent=user_agent,
        prompt_hash=prompt_hash,
        retry_after=retry_after,
        job_status=job_status,
    )


class Journal:
    """The last ``size`` requests, oldest first.

    Recording is cheap (one tuple of plain values); the :class:`Entry` view is
    built only when the journal is read.

    Example::

        journal = Journal(size=10_000)
        journal.query({"method": "GET", "path": "/agent/job/*"})
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"journal size must be >= 1, got {size}")
        self._raw: collections.deque[_Raw] = collections.deque(maxlen=size)
        self._seq = 0
        self._cleared_at = 0  # the sequence number at the last clear
        self.size = size

    def record(
        self,
        method: str,
        path: str,
        status: int,
        owner: str | None,
        job_id: str | None,
        arrived: float,
        answered: float,
        started: float,
        ended: float,
        fault: str | None,
        *,
        user_agent: str | None = None,
        prompt_hash: str | None = None,
        retry_after: float | None = None,
        job_status: str | None = None,
    ) -> None:
        """Keep one request: its method and path, its status (0: no answer), who sent
        it and which job it was about, its simulated arrival and answer times,
        perf-counter start and end, the fault it got, and what grading needs (see
        :class:`Entry`)."""
        self._seq += 1
        latency = ended - started
        self._raw.append(
            (
                self._seq,
                method,
                path,
                status,
                owner,
                job_id,
                arrived,
                answered,
                wall_time() - latency,
                latency,
                fault,
                user_agent,
                prompt_hash,
                retry_after,
                job_status,
            )
        )

    def last(self) -> Entry:
        return _entry(self._raw[-1])

    def clear(self) -> None:
        self._raw.clear()
        self._cleared_at = self._seq

    @property
    def dropped(self) -> int:
        """Requests recorded since the last :meth:`clear` that the journal no longer holds."""
        return self._seq - self._cleared_at - len(self._raw)

    def entries(self) -> list[Entry]:
        """Every entry held, oldest first."""
        return list(map(_entry, self._raw))

    def __len__(self) -> int:
        return len(self._raw)

    def query(self, filters: Mapping[str, str], *, limit: int | None = None) -> list[Entry]:
        """Entries matching every filter (``path`` is a glob, the rest exact), oldest first.

        ``limit`` keeps the newest ``limit`` matches. Unknown filters are an error.
        """
        unknown = set(filters) - set(_FILTERS)
        if unknown:
            raise ValueError(f"unknown journal filter {sorted(unknown)[0]!r}; use {_FILTERS}")
        wanted = dict(filters)
        path = wanted.pop("path", None)
        out = [
            e
            for e in map(_entry, self._raw)
            if (path is None or fnmatch.fnmatchcase(e.path, path))
            and all(str(getattr(e, name)) == value for name, value in wanted.items())
        ]
        return out[-limit:] if limit else out
