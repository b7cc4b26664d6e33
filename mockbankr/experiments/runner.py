"""Run an experiment: each policy on its own fresh simulator, same seed, same arrivals.

In-process (the default) every policy gets a new app on a new
:class:`~mockbankr.clock.VirtualClock`, so an hour of fleet time takes seconds and two
runs of one file give the same numbers. Live (``base_url``), the policies run one after
another against a running server, reset between them, in real time (the server's own
``--speed`` applies). Either way the metrics come from the server's records.

Example::

    results = asyncio.run(run_experiment(spec))
    results["policies"][0]["metrics"]["usdc_wasted"]
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from bankr_client import AsyncBankrClient

from mockbankr import __version__
from mockbankr._asgi import AsyncClockTransport
from mockbankr.app import create_app
from mockbankr.clock import DEFAULT_EPOCH, Clock, VirtualClock, perf_seconds
from mockbankr.experiments.agents import AgentIdentity, reference_client, run_task
from mockbankr.experiments.metrics import compute, requests_per_second
from mockbankr.experiments.plan import Task, plan_tasks
from mockbankr.experiments.records import Records, records_from_app
from mockbankr.experiments.spec import ExperimentSpec, NaivePolicy, Policy
from mockbankr.experiments.verdicts import grade_run
from mockbankr.journal import MAX_ENTRY_BYTES
from mockbankr.money import PaymentTerms, usdc_to_atomic
from mockbankr.settings import Settings
from mockbankr.store import MemoryStore
from mockbankr.timing import TimingTable, load_timing

__all__ = [
    "PolicyRun",
    "fewer_collections",
    "fleet",
    "journal_size_for",
    "results_document",
    "run_experiment",
    "run_policy",
    "summarize_run",
]

_IN_PROCESS_URL = "http://mockbankr.local"
#: Allocations between two first-generation collections while a fleet runs (Python's is 700).
GC_THRESHOLD = 20_000
#: The most entries an in-process journal is sized for (about 100 bytes each).
MAX_JOURNAL = 5_000_000

Progress = Callable[[str, float, int], None]


@dataclass
class PolicyRun:
    """One policy's run: its records and the wall seconds it took."""

    policy: Policy
    records: Records
    wall_s: float
    rows: list[dict[str, Any]] = field(default_factory=list)


def journal_size_for(spec: ExperimentSpec, policy: Policy) -> int:
    """Enough journal entries for every request the policy can send (bounded)."""
    tries = policy.retries + 1
    per_task = tries * (policy.max_attempts + policy.retries + 3)
    if isinstance(policy, NaivePolicy):
        per_task = policy.retries * (policy.max_attempts + 2)
    # x402 prompts are two requests (the challenge, then the paid one).
    per_task += tries
    return max(1000, min(MAX_JOURNAL, spec.task_count * per_task + 1000))


async def fleet(
    policy: Policy,
    tasks: Sequence[Task],
    *,
    spec: ExperimentSpec,
    clock: Clock,
    transport: httpx.AsyncBaseTransport,
    base_url: str,
    t0: float,
    done: Callable[[float], None],
) -> None:
    by_agent: dict[int, list[Task]] = {}
    for task in tasks:
        by_agent.setdefault(task.agent, []).append(task)

    async def agent(index: int, mine: list[Task]) -> None:
        identity = AgentIdentity(
            seed=spec.experiment.seed,
            index=index,
            flavour=spec.experiment.flavour,
            now=clock.now,
        )
        client: AsyncBankrClient | None = None
        if not isinstance(policy, NaivePolicy):
            client = reference_client(
                policy, identity, transport=transport, base_url=base_url, clock=clock
            )
        for task in mine:
            wait = t0 + task.at - clock.now()
            if wait > 0:
                await clock.sleep(wait)
            await run_task(
                policy,
                identity,
                task.prompt,
                transport=transport,
                client=client,
                base_url=base_url,
                clock=clock,
            )
            done(clock.now() - t0)

    with fewer_collections():
        async with asyncio.TaskGroup() as group:
            for index, mine in by_agent.items():
                group.create_task(agent(index, mine))


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run a fleet with the cyclic garbage collector mostly out of the way.

    A fleet allocates a great many short-lived objects (requests, responses, frames) while
    everything older (modules, the plan, the simulator) stays put. Frozen, the old objects
    are not traversed again; with a larger first-generation threshold the collector runs
    a tenth as often. Both are undone on the way out.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


async def run_policy(
    spec: ExperimentSpec,
    policy: Policy,
    tasks: Sequence[Task],
    table: TimingTable,
    *,
    done: Callable[[float], None] = lambda _: None,
    clock: VirtualClock | None = None,
) -> PolicyRun:
    """One policy, in-process, on a fresh simulator seeded as the file says."""
    seed = spec.experiment.seed
    clock = clock or VirtualClock(DEFAULT_EPOCH)
    settings = Settings(
        seed=seed,
        daily_limit=spec.server.daily_limit,
        rules=spec.rules,
        journal_size=journal_size_for(spec, policy),
        # Never bounded by bytes before entries: the size (every request) bounds it.
        journal_bytes=journal_size_for(spec, policy) * MAX_ENTRY_BYTES,
        payment=PaymentTerms(price_atomic=usdc_to_atomic(spec.server.price_usdc)),
    )
    app = create_app(
        settings, clock=clock, rng=random.Random(seed), store=MemoryStore(), table=table
    )
    transport = AsyncClockTransport(app, clock)
    t0 = clock.now()
    started = perf_seconds()
    try:
        await fleet(
            policy,
            tasks,
            spec=spec,
            clock=clock,
            transport=transport,
            base_url=_IN_PROCESS_URL,
            t0=t0,
            done=done,
        )
    finally:
        await transport.aclose()
    wall = perf_seconds() - started
    records = await records_from_app(app, t0=t0, end=clock.now() - t0)
    return PolicyRun(policy, records, wall)


def summarize_run(
    spec: ExperimentSpec, run: PolicyRun, tasks: Sequence[Task], price_atomic: int
) -> dict[str, Any]:
    """The ``policies[i]`` entry of ``results.json`` (and the run's ``jobs.csv`` rows)."""
    records = run.records
    metrics, rows = compute(
        tasks,
        records.requests,
        records.jobs,
        price_atomic=price_atomic,
        end=records.end,
        ledger_atomic=records.ledger_atomic if spec.experiment.flavour == "x402" else None,
    )
    run.rows = rows
    knobs = {k: v for k, v in _knobs(run.policy).items() if k != "name"}
    return {
        "name": run.policy.name,
        "kind": "naive" if isinstance(run.policy, NaivePolicy) else "reference",
        "knobs": knobs,
        "metrics": metrics,
        "verdicts": grade_run(records, price_usdc=spec.server.price_usdc),
        "journal": records.coverage,
        "ledger": {
            "count": records.ledger_count,
            "usdc": round(records.ledger_atomic / 1_000_000, 6),
        },
        "paid_prompts": sum(
            1
            for r in records.requests
            if r.method == "POST"
            and r.path in ("/agent/prompt", "/v2/prompt")
            and 200 <= r.status < 300
        ),
        "requests_per_s": requests_per_second(records.requests, records.end),
        "time_to_result": sorted(
            round(float(r["seen_end_s"]) - float(r["task_at_s"]), 6)
            for r in rows
            if r["spend"] == "useful"
        ),
        "polls": [r["polls"] for r in rows],
        "wall_s": round(run.wall_s, 3),
    }


def _knobs(policy: Policy) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(policy)
    return out


def results_document(
    spec: ExperimentSpec,
    entries: list[dict[str, Any]],
    *,
    mode: str,
    source: str,
    wall_s: float,
) -> dict[str, Any]:
    """The whole ``results.json``."""
    import msgspec

    return {
        "mockbankr_version": __version__,
        "mode": mode,
        "experiment": msgspec.to_builtins(spec),
        "experiment_file": source,
        "tasks": spec.task_count,
        "wall_s": round(wall_s, 3),
        "policies": entries,
    }


async def run_experiment(
    spec: ExperimentSpec,
    *,
    table: TimingTable | None = None,
    source: str = "",
    on_policy: Callable[[Policy, int], Callable[[float], None]] | None = None,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Every policy in-process: ``results.json`` as a dict, and the job rows per policy."""
    table = table or load_timing()
    tasks = plan_tasks(spec, table)
    price = usdc_to_atomic(spec.server.price_usdc)
    entries = []
    rows: dict[str, list[dict[str, Any]]] = {}
    started = perf_seconds()
    for policy in spec.policies:
        done = on_policy(policy, len(tasks)) if on_policy else (lambda _: None)
        run = await run_policy(spec, policy, tasks, table, done=done)
        entries.append(summarize_run(spec, run, tasks, price))
        rows[policy.name] = run.rows
    wall = perf_seconds() - started
    return results_document(spec, entries, mode="in-process", source=source, wall_s=wall), rows
