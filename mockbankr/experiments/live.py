"""Live runs and reports: the same fleet against a running server, in real time.

:func:`run_live` runs each policy in turn against ``base_url``: it resets the server
(``POST /__mock/reset``), installs the experiment's faults as rules, runs the fleet on a
clock that follows the server's speed, and reads the records back through ``/__mock``.
The server's own settings apply (its daily limit, its price, its journal size).
:func:`report_from_server` builds the same results from whatever the server recorded
(after a Locust run, say), with one task per tagged prompt.

The agents share one connection pool, sized for the fleet, with every connection kept
alive: see :func:`bankr_client.pooled_transport`.

Example::

    results, rows = asyncio.run(run_live(spec, "http://127.0.0.1:8402"))
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx

from mockbankr.clock import ScaledClock, perf_seconds
from mockbankr.errors import ConfigError
from mockbankr.experiments.plan import Task, plan_tasks, task_of_prompt
from mockbankr.experiments.records import last_seq, records_from_server
from mockbankr.experiments.runner import PolicyRun, fleet, results_document, summarize_run
from mockbankr.experiments.spec import ExperimentSpec, Policy
from mockbankr.experiments.transport import lean_transport
from mockbankr.money import usdc_to_atomic
from mockbankr.timing import load_timing

__all__ = ["MAX_LIVE_CONNECTIONS", "report_from_server", "run_blocking", "run_live"]

T = TypeVar("T")


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, on uvloop when it is installed (``uvicorn[standard]`` brings it).

    A live fleet's event loop is part of what the client costs; uvloop's is in C, as the
    server's is (uvicorn picks it too).
    """
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover -- uvicorn[standard] brings it (not on Windows)
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


#: The most connections a live fleet opens to the server (on loopback a few dozen carry
#: the load; more only add to what both sides poll).
MAX_LIVE_CONNECTIONS = 32


def _control(base_url: str, admin_token: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=60.0)


async def _clock(control: httpx.AsyncClient) -> dict[str, Any]:
    try:
        response = await control.get("/__mock/clock")
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach {control.base_url}: {exc}") from exc
    if response.status_code != 200:
        raise ConfigError(
            f"{control.base_url} has no usable /__mock control plane"
            f" (GET /__mock/clock answered {response.status_code}); live experiments need a"
            " mockbankr server (and --admin-token if it has one)"
        )
    clock: dict[str, Any] = response.json()
    if clock.get("kind") == "virtual":
        raise ConfigError("the server's clock is virtual: a live run needs a running clock")
    return clock


async def run_live(
    spec: ExperimentSpec,
    base_url: str,
    *,
    source: str = "",
    on_policy: Callable[[Policy, int], Callable[[float], None]] | None = None,
    admin_token: str | None = None,
    on_fleet: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Every policy in turn against a running server; ``results.json`` and job rows.

    ``on_fleet`` is called with ``"start"`` just before each policy's fleet and ``"end"``
    just after it (before the records are read): what a benchmark measures between them
    is the fleet alone.
    """
    tasks = plan_tasks(spec, load_timing())
    price = usdc_to_atomic(spec.server.price_usdc)
    entries = []
    rows: dict[str, list[dict[str, Any]]] = {}
    started = perf_seconds()
    url = base_url.rstrip("/")
    async with _control(url, admin_token) as control:
        await _clock(control)
        for policy in spec.policies:
            # The journal's sequence goes on through a reset: the run's first request is
            # the one after the newest entry now.
            first = await last_seq(control) + 1
            (await control.post("/__mock/reset", json={})).raise_for_status()
            for i, rule in enumerate(spec.faults):
                response = await control.post("/__mock/rules", json=rule)
                if response.status_code != 201:
                    raise ConfigError(f"the server refused faults[{i}]: {response.text[:300]}")
            clock_json = await _clock(control)
            t0 = float(clock_json["unix"])
            clock = ScaledClock(float(clock_json.get("speed") or 1.0), start=t0)
            done = on_policy(policy, len(tasks)) if on_policy else (lambda _: None)
            agents = len({task.agent for task in tasks})
            transport = lean_transport(url, min(agents, MAX_LIVE_CONNECTIONS))
            if on_fleet is not None:
                on_fleet("start")
            policy_started = perf_seconds()
            try:
                await fleet(
                    policy,
                    tasks,
                    spec=spec,
                    clock=clock,
                    transport=transport,
                    base_url=url,
                    t0=t0,
                    done=done,
                )
            finally:
                await transport.aclose()
            wall = perf_seconds() - policy_started
            if on_fleet is not None:
                on_fleet("end")
            records = await records_from_server(control, t0=t0, first_seq=first)
            run = PolicyRun(policy, records, wall)
            entries.append(summarize_run(spec, run, tasks, price))
            rows[policy.name] = run.rows
    results = results_document(
        spec, entries, mode=f"live ({url})", source=source, wall_s=perf_seconds() - started
    )
    return results, rows


async def report_from_server(
    base_url: str,
    *,
    name: str = "server",
    admin_token: str | None = None,
    price_usdc: str = "0.10",
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Results from a server's records alone: one task per tagged prompt, asked when its
    first job was created."""
    from mockbankr.experiments.spec import parse_experiment

    started = perf_seconds()
    async with _control(base_url, admin_token) as control:
        await _clock(control)
        records = await records_from_server(control)
    first: dict[tuple[int, int], Task] = {}
    for job in sorted(records.jobs, key=lambda j: j.created):
        tag = task_of_prompt(job.prompt)
        if tag is not None and tag not in first:
            first[tag] = Task(tag[0], tag[1], job.created, job.category, job.prompt)
    tasks = sorted(first.values(), key=lambda t: (t.at, t.agent, t.index))
    flavour = "x402" if any(e.path.startswith("/v2/") for e in records.entries) else "api-key"
    spec = parse_experiment(
        {
            "experiment": {"name": name, "flavour": flavour},
            "fleet": {"agents": max(1, len({t.agent for t in tasks}))},
            "server": {"price_usdc": price_usdc},
            "policies": [{"name": name, "kind": "reference"}],
        }
    )
    run = PolicyRun(spec.policies[0], records, 0.0)
    entry = summarize_run(spec, run, tasks, usdc_to_atomic(price_usdc))
    entry["kind"] = "observed"
    entry["knobs"] = {}
    results = results_document(
        spec, [entry], mode=f"report ({base_url})", source="", wall_s=perf_seconds() - started
    )
    results["tasks"] = len(tasks)
    return results, {name: run.rows}
