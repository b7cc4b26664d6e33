"""The request journal: what arrived, what it got, and when, in a bounded ring buffer."""

from __future__ import annotations

import collections
import fnmatch
from collections.abc import Mapping
from typing import Any

import msgspec

from mockbankr.clock import iso

__all__ = ["Entry", "Journal"]


class Entry(msgspec.Struct, frozen=True):
    """One request. ``owner`` is the API key or the wallet.

    ``sim_time`` and ``wall_time`` are when it arrived (unix seconds);
    ``latency_ms`` is wall time to answer, ``sim_latency_ms`` simulated time
    (a ``delay`` rule shows there). ``status`` is 0 when no answer was sent
    (a ``drop``, a ``hang`` the client gave up on).
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
        }


_FILTERS = ("method", "path", "status", "owner", "job_id", "fault")


class Journal:
    """The last ``size`` requests, oldest first.

    Example::

        journal = Journal(size=10_000)
        journal.query({"method": "GET", "path": "/agent/job/*"})
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"journal size must be >= 1, got {size}")
        self._entries: collections.deque[Entry] = collections.deque(maxlen=size)
        self._seq = 0
        self.size = size

    def record(self, **fields: Any) -> Entry:
        self._seq += 1
        entry = Entry(seq=self._seq, **fields)
        self._entries.append(entry)
        return entry

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

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
            for e in self._entries
            if (path is None or fnmatch.fnmatchcase(e.path, path))
            and all(str(getattr(e, name)) == value for name, value in wanted.items())
        ]
        return out[-limit:] if limit is not None else out
