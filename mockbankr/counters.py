"""Per-request counts the metrics need that no stored record holds: requests and fault firings.

Jobs, their statuses and the ledger are read from the job store when
``/__mock/metrics`` is scraped (:mod:`mockbankr.metrics`); what happened to each
*request* is not stored anywhere the whole population shares, so the steering layer
counts it here: requests by route template and status, and fault firings by rule id.

:class:`RequestCounters` is the interface. Counting is synchronous and must be cheap
(it runs on every request, in the path that already journals it); reading and
clearing are ``async``, so that a store shared by several workers (Redis) can
implement it too: count into a local buffer, and when :attr:`~RequestCounters.flush_due`
says so the steering layer awaits :meth:`~RequestCounters.flush` (after the response
is sent); a scrape reads the shared totals. :class:`MemoryCounters` is the in-process
one (never due); :class:`mockbankr.redis_store.RedisCounters` the shared one.

Example::

    counters = MemoryCounters()
    counters.count_request("/agent/job/{job_id}", 200)
    snapshot = await counters.snapshot()
    snapshot.requests[("/agent/job/{job_id}", 200)]  # 1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["CounterSnapshot", "MemoryCounters", "RequestCounters"]


@dataclass(frozen=True)
class CounterSnapshot:
    """The counts at one moment: ``requests[(route, status)]`` and ``faults[rule_id]``.

    ``route`` is the route template (``/agent/job/{job_id}``), or ``"unmatched"``
    for a path no route serves; ``status`` is 0 when no answer was sent.
    """

    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class RequestCounters(Protocol):
    """Where the steering layer counts requests and rule firings.

    Example::

        counters.count_request("/agent/prompt", 202)
        counters.count_fault("r1")
    """

    def count_request(self, route: str, status: int) -> None:
        """One request to ``route`` (its template) answered ``status`` (0: no answer)."""
        ...

    def count_fault(self, rule_id: str) -> None:
        """The rule ``rule_id`` fired once."""
        ...

    @property
    def flush_due(self) -> bool:
        """Whether :meth:`flush` should be awaited now (read after every request)."""
        ...

    async def flush(self) -> None:
        """Write what was counted here to where the counts are shared (if anywhere)."""
        ...

    async def snapshot(self) -> CounterSnapshot:
        """Every count so far (of the whole population, for a shared implementation)."""
        ...

    async def clear(self) -> None:
        """Back to zero (``POST /__mock/reset``)."""
        ...


class MemoryCounters:
    """Counts in two dicts of this process: the default (one worker, one store).

    Example::

        counters = MemoryCounters()
        counters.count_fault("r1")
    """

    #: Nothing to write anywhere: the counts are already where a scrape reads them.
    flush_due = False

    def __init__(self) -> None:
        self._requests: dict[tuple[str, int], int] = {}
        self._faults: dict[str, int] = {}

    async def flush(self) -> None:
        return None

    def count_request(self, route: str, status: int) -> None:
        key = (route, status)
        self._requests[key] = self._requests.get(key, 0) + 1

    def count_fault(self, rule_id: str) -> None:
        self._faults[rule_id] = self._faults.get(rule_id, 0) + 1

    async def snapshot(self) -> CounterSnapshot:
        return CounterSnapshot(dict(self._requests), dict(self._faults))

    async def clear(self) -> None:
        self._requests.clear()
        self._faults.clear()
