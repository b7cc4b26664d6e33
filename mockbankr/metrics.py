"""``GET /__mock/metrics``: the Prometheus text format, read from the shared records at scrape time.

Nothing here counts while requests run. A scrape reads what the whole population
shares (with several workers on one store, every worker's requests and jobs):

* the job store, in one pass (:meth:`~mockbankr.store.JobStore.scan`): jobs created
  by category, finished jobs by category and final status, live jobs, the
  submit-to-terminal histogram in simulated seconds, and the jobs of API keys (each
  would have cost the server's price);
* the ledger: what x402 payments would have spent;
* the :class:`~mockbankr.counters.RequestCounters`: requests by route template and
  status, fault firings by rule id.

prometheus-client is imported only on the first scrape (``import mockbankr`` stays
cheap). The metrics, all prefixed ``mockbankr_``:

=========================================  =========  ================================
name                                       type       labels
=========================================  =========  ================================
``requests_total``                         counter    ``route``, ``status``
``jobs_created_total``                     counter    ``category``
``jobs_finished_total``                    counter    ``category``, ``status``
``jobs_live``                              gauge      ``category``, ``status``
``spent_usdc_total``                       counter    ``payment`` (``x402``, ``api_key``)
``fault_firings_total``                    counter    ``rule``
``job_duration_simulated_seconds``         histogram  (none)
=========================================  =========  ================================

Example::

    endpoint = MetricsEndpoint(sim, counters, price_atomic=100_000)
    Route("/__mock/metrics", control.guard(endpoint), methods=["GET"])
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mockbankr.core import Simulator
from mockbankr.counters import CounterSnapshot, RequestCounters
from mockbankr.jobs import JobRecord, JobStatus, status_of
from mockbankr.money import USDC_DECIMALS
from mockbankr.store import JobStore

__all__ = ["DURATION_BUCKETS", "MetricsEndpoint", "Population", "read_population"]

#: Upper bounds (simulated seconds) of the submit-to-terminal histogram's buckets.
DURATION_BUCKETS: tuple[float, ...] = (
    1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600,
)  # fmt: skip

_USDC = 10**USDC_DECIMALS
_TERMINAL = frozenset(status for status in JobStatus if status.terminal)


@dataclass
class Population:
    """What one pass over the job store found (see :func:`read_population`)."""

    created: dict[str, int] = field(default_factory=dict)
    finished: dict[tuple[str, str], int] = field(default_factory=dict)
    live: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Jobs submitted with an API key (``/agent/prompt``): each would have cost the price.
    key_jobs: int = 0
    #: Per bucket of :data:`DURATION_BUCKETS` (and one for +Inf), not cumulative.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    duration_sum: float = 0.0

    def add(self, job: JobRecord, now: float) -> None:
        category = job.category
        self.created[category] = self.created.get(category, 0) + 1
        if job.owner.startswith("key:"):
            self.key_jobs += 1
        status = status_of(job, now)  # a StrEnum: its own label value
        key = (category, status)
        if status not in _TERMINAL:
            self.live[key] = self.live.get(key, 0) + 1
            return
        self.finished[key] = self.finished.get(key, 0) + 1
        ended = job.cancelled_at if status is JobStatus.CANCELLED else job.finished_at
        seconds = max(0.0, (ended if ended is not None else now) - job.created_at)
        self.duration_sum += seconds
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1


async def read_population(store: JobStore, now: float) -> Population:
    """Every stored job, tallied at simulated time ``now``, in one scan of ``store``."""
    population = Population()

    def visit(job: JobRecord) -> bool:
        population.add(job, now)
        return False  # keep nothing: the scan is only a walk

    await store.scan(visit, offset=0, limit=1)
    return population


class _Snapshot:
    """A prometheus-client collector over figures read a moment ago (``collect`` is sync)."""

    def __init__(
        self,
        population: Population,
        counts: CounterSnapshot,
        *,
        x402_atomic: int,
        price_atomic: int,
    ) -> None:
        self.population = population
        self.counts = counts
        self.x402_atomic = x402_atomic
        self.price_atomic = price_atomic

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        pop, counts = self.population, self.counts
        requests = CounterMetricFamily(
            "mockbankr_requests",
            "Bankr API requests by route template and status (0: no answer was sent)",
            labels=["route", "status"],
        )
        for (route, code), count in sorted(counts.requests.items()):
            requests.add_metric([route, str(code)], count)
        yield requests

        created = CounterMetricFamily(
            "mockbankr_jobs_created", "Jobs submitted, by category", labels=["category"]
        )
        for category, count in sorted(pop.created.items()):
            created.add_metric([category], count)
        yield created

        finished = CounterMetricFamily(
            "mockbankr_jobs_finished",
            "Jobs in a final status (completed, failed, cancelled), by category",
            labels=["category", "status"],
        )
        for (category, status), count in sorted(pop.finished.items()):
            finished.add_metric([category, status], count)
        yield finished

        live = GaugeMetricFamily(
            "mockbankr_jobs_live",
            "Jobs not finished yet (pending, processing), by category",
            labels=["category", "status"],
        )
        for (category, status), count in sorted(pop.live.items()):
            live.add_metric([category, status], count)
        yield live

        spent = CounterMetricFamily(
            "mockbankr_spent_usdc",
            "USDC that would have been spent (nothing is settled): x402 payments in the"
            " ledger, and the price of each job submitted with an API key",
            labels=["payment"],
        )
        spent.add_metric(["x402"], self.x402_atomic / _USDC)
        spent.add_metric(["api_key"], pop.key_jobs * self.price_atomic / _USDC)
        yield spent

        faults = CounterMetricFamily(
            "mockbankr_fault_firings", "Times each fault rule fired, by rule id", labels=["rule"]
        )
        for rule_id, count in sorted(counts.faults.items()):
            faults.add_metric([rule_id], count)
        yield faults

        cumulative, buckets = 0, []
        for bound, count in zip((*DURATION_BUCKETS, math.inf), pop.buckets, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == math.inf else f"{bound:g}", cumulative))
        yield HistogramMetricFamily(
            "mockbankr_job_duration_simulated_seconds",
            "Simulated seconds from a job's submission to its final status",
            buckets=buckets,
            sum_value=pop.duration_sum,
        )


class MetricsEndpoint:
    """The ``/__mock/metrics`` endpoint: reads the records, renders the text format.

    ``price_atomic`` is what a job costs (USDC atomic units), for the jobs of API keys.

    Example::

        endpoint = MetricsEndpoint(sim, MemoryCounters(), price_atomic=100_000)
    """

    __name__ = "metrics"

    def __init__(self, sim: Simulator, counters: RequestCounters, *, price_atomic: int) -> None:
        self.sim = sim
        self.counters = counters
        self.price_atomic = price_atomic

    async def render(self) -> bytes:
        """The metrics now, in the Prometheus text format (version 0.0.4)."""
        from prometheus_client import CollectorRegistry, generate_latest

        store = self.sim.store
        population = await read_population(store, self.sim.clock.now())
        ledger = await store.ledger()
        counts = await self.counters.snapshot()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(
            _Snapshot(
                population,
                counts,
                x402_atomic=sum(entry.amount_atomic for entry in ledger),
                price_atomic=self.price_atomic,
            )
        )
        text: bytes = generate_latest(registry)
        return text

    async def __call__(self, request: Request) -> Response:
        return Response(await self.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
