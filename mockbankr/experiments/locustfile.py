"""The shipped locustfile: Locust users that are agents following an experiment's policy.

Run it with Locust's own command line (``pip install 'mockbankr[load]'``); ``python -m
mockbankr.experiments.locustfile`` prints its path::

    export MOCKBANKR_EXPERIMENT=fixtures/experiments/polling.toml MOCKBANKR_POLICY=naive-2s
    locust -f "$(python -m mockbankr.experiments.locustfile)" --headless -u 100 -r 20 \\
        -t 60s --host http://127.0.0.1:8402

Headless, with the web UI, or distributed (``--master`` / ``--worker``), unchanged. Each
user is one agent with its own API key (or wallet, for an ``x402`` experiment); it asks
prompts of the experiment's mix one after another, each tagged so that ``mockbankr
experiment report`` can tie the server's jobs back to tasks. Every request is reported to
Locust's statistics, job paths grouped as ``/agent/job/[id]``.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # `python -m mockbankr.experiments.locustfile`: where am I?
    print(Path(__file__).resolve())
    sys.exit(0)

import httpx
from bankr_client import SystemClock

from mockbankr.clock import ScaledClock
from mockbankr.experiments.agents import AgentIdentity, run_task_sync
from mockbankr.experiments.plan import category_prompt
from mockbankr.experiments.spec import ExperimentSpec, Policy, load_experiment
from mockbankr.timing import TimingTable, default_fixtures_dir, load_timing

__all__ = ["ReportingTransport", "agent_class"]

logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise

_DEFAULT_EXPERIMENT = default_fixtures_dir() / "experiments" / "polling.toml"


@functools.cache
def _experiment() -> tuple[ExperimentSpec, Policy]:
    table = _table()
    path = Path(os.environ.get("MOCKBANKR_EXPERIMENT") or _DEFAULT_EXPERIMENT)
    spec = load_experiment(path, categories=frozenset(table.categories))
    wanted = os.environ.get("MOCKBANKR_POLICY")
    policies = [p for p in spec.policies if wanted in (None, "", p.name)]
    if not policies:
        names = ", ".join(p.name for p in spec.policies)
        raise SystemExit(f"MOCKBANKR_POLICY={wanted!r} is not in {path} (policies: {names})")
    return spec, policies[0]


@functools.cache
def _table() -> TimingTable:
    return load_timing()


def _name(path: str) -> str:
    parts = path.split("/")
    if len(parts) >= 4 and parts[2] == "job":
        parts[3] = "[id]"
    return "/".join(parts)


class ReportingTransport(httpx.BaseTransport):
    """An HTTP transport that reports every request to Locust's statistics."""

    def __init__(self, environment: Any) -> None:
        self._inner = httpx.HTTPTransport()
        self._environment = environment

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self._inner.handle_request(request)
            response.read()
        except httpx.HTTPError as exc:
            self._report(request, started, 0, exc)
            raise
        # (A user stopped mid-request gets GreenletExit here: nothing is reported.)
        failed = RuntimeError(f"HTTP {response.status_code}") if response.is_error else None
        self._report(request, started, len(response.content), failed)
        return response

    def _report(
        self, request: httpx.Request, started: float, length: int, exception: Exception | None
    ) -> None:
        self._environment.events.request.fire(
            request_type=request.method,
            name=_name(request.url.path),
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=exception,
            context={},
        )

    def close(self) -> None:
        self._inner.close()


def agent_class() -> type:
    """The Locust user class (imports Locust: only the locust command should call it)."""
    try:
        from locust import User, constant, task
        from locust.env import Environment
    except ImportError as exc:  # pragma: no cover - the extra is installed in dev
        raise ImportError("the locustfile needs Locust: pip install 'mockbankr[load]'") from exc

    class Agent(User):
        """One agent: asks its experiment's prompts in turn, under the chosen policy."""

        wait_time = constant(0)

        def __init__(self, environment: Environment) -> None:
            super().__init__(environment)
            self.spec, self.policy = _experiment()
            self.index = random.SystemRandom().getrandbits(40)  # unique across workers
            self.identity = AgentIdentity(
                seed=self.spec.experiment.seed,
                index=self.index,
                flavour=self.spec.experiment.flavour,
            )
            table = _table()
            self.mix = list(self.spec.fleet.mix)
            self.weights = [self.spec.fleet.mix[name] for name in self.mix]
            self.prompts = {name: category_prompt(table, name) for name in self.mix}
            self.rng = random.Random(self.index)
            self.transport = ReportingTransport(environment)
            self.count = 0

        def on_start(self) -> None:
            # Poll on the server's time: at --speed 20, a 2 s interval is 0.1 wall seconds.
            self.clock: Any = SystemClock()
            try:
                found = httpx.get(f"{self._host()}/__mock/clock", timeout=10.0)
                speed = found.json().get("speed") if found.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                speed = None
            if isinstance(speed, int | float) and speed > 0 and speed != 1:
                self.clock = ScaledClock(float(speed))

        def _host(self) -> str:
            return (self.host or "http://127.0.0.1:8402").rstrip("/")

        def on_stop(self) -> None:
            self.transport.close()

        @task
        def ask(self) -> None:
            category = self.rng.choices(self.mix, self.weights)[0]
            prompt = f"{self.prompts[category]} [a{self.index}.t{self.count}]"
            self.count += 1
            run_task_sync(
                self.policy,
                self.identity,
                prompt,
                transport=self.transport,
                base_url=self._host(),
                clock=self.clock,
            )

    return Agent


# Locust imports itself (and patches the standard library with gevent) before it loads a
# locustfile; anything else that imports this module (a test walking the package) must
# not get gevent's patches, so the user class exists only under Locust.
if "locust" in sys.modules:
    Agent = agent_class()
