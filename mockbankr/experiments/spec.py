"""The experiment file: TOML, strictly validated, every key documented in the README.

An experiment names a fleet of agents, the faults the server injects (control-plane
rules, verbatim) and the policies to compare. :func:`load_experiment` reads and checks a
file; :func:`parse_experiment` checks an already-parsed mapping. Anything unknown, out of
range or contradictory raises :class:`~mockbankr.errors.ConfigError` naming the key.

Example::

    spec = load_experiment(Path("fixtures/experiments/polling.toml"))
    [policy.name for policy in spec.policies]
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from mockbankr.errors import ConfigError
from mockbankr.money import usdc_to_atomic
from mockbankr.rules import Rule, parse_rule

__all__ = [
    "Experiment",
    "ExperimentSpec",
    "Fleet",
    "MAX_TASKS",
    "NaivePolicy",
    "Policy",
    "ReferencePolicy",
    "ServerSpec",
    "load_experiment",
    "parse_experiment",
]

#: The most tasks (agents x tasks per agent) one experiment may ask for.
MAX_TASKS = 200_000
#: The longest simulated arrival window: 30 days.
MAX_DURATION = 30 * 86_400.0
#: The longest a policy may wait for one job (a week).
MAX_TIMEOUT = 7 * 86_400.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+-]{0,63}$")
#: The largest experiment file read (hostile input is bounded before it is parsed).
MAX_FILE_BYTES = 1_000_000


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class Experiment(_Strict, frozen=True):
    """``[experiment]``: what the run is called, its seed, flavour and arrival window."""

    name: str
    seed: int = 0
    flavour: Literal["api-key", "x402"] = "api-key"
    duration_s: float = 0.0


class ServerSpec(_Strict, frozen=True):
    """``[server]``: how each simulator is configured (optional)."""

    daily_limit: int | None = None
    price_usdc: str = "0.10"


class Fleet(_Strict, frozen=True):
    """``[fleet]``: who sends prompts, when, and which kinds of prompt."""

    agents: int | None = None
    rate_per_s: float | None = None
    arrival: Literal["constant", "poisson"] = "constant"
    tasks_per_agent: int = 1
    task_every_s: float = 60.0
    mix: dict[str, float] = msgspec.field(default_factory=lambda: {"price": 1.0})


class ReferencePolicy(_Strict, frozen=True, tag="reference", tag_field="kind"):
    """The reference client (``bankr_client``) with its knobs."""

    name: str
    interval_s: float = 2.0
    max_attempts: int = 150
    timeout_s: float = 300.0
    request_timeout_s: float = 30.0
    retries: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    jitter: bool = True
    cancel_on_timeout: bool = True


class NaivePolicy(_Strict, frozen=True, tag="naive", tag_field="kind"):
    """The seed's documented pattern, literally (see the README)."""

    name: str
    interval_s: float = 2.0
    max_attempts: int = 150
    timeout_s: float = 60.0
    retries: int = 3


Policy = ReferencePolicy | NaivePolicy


class ExperimentSpec(_Strict, frozen=True):
    """A whole experiment file."""

    experiment: Experiment
    fleet: Fleet
    policies: list[Policy]
    server: ServerSpec = ServerSpec()
    faults: list[dict[str, Any]] = msgspec.field(default_factory=list)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The faults as validated control-plane rules."""
        return tuple(parse_rule(raw, where=f"faults[{i}]") for i, raw in enumerate(self.faults))

    @property
    def agent_count(self) -> int:
        """How many agents arrive (a rate times the window, when given as a rate)."""
        if self.fleet.agents is not None:
            return self.fleet.agents
        assert self.fleet.rate_per_s is not None
        return max(1, round(self.fleet.rate_per_s * self.experiment.duration_s))

    @property
    def task_count(self) -> int:
        return self.agent_count * self.fleet.tasks_per_agent


def _finite(where: str, value: float, *, lo: float, hi: float, lo_open: bool = False) -> None:
    ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        bound = f"({lo:g}, {hi:g}]" if lo_open else f"[{lo:g}, {hi:g}]"
        raise ConfigError(f"{where} must be within {bound}, got {value!r}")


def _check_policy(i: int, policy: Policy) -> None:
    where = f"policies[{i}]"
    if not _NAME.match(policy.name):
        raise ConfigError(
            f"{where}.name must be 1-64 letters, digits, spaces or _.+- , got {policy.name!r}"
        )
    _finite(f"{where}.interval_s", policy.interval_s, lo=0.1, hi=3600.0)
    _finite(f"{where}.timeout_s", policy.timeout_s, lo=0.0, hi=MAX_TIMEOUT, lo_open=True)
    if not 1 <= policy.max_attempts <= 10_000:
        raise ConfigError(
            f"{where}.max_attempts must be within 1..10000, got {policy.max_attempts}"
        )
    if not 0 <= policy.retries <= 20:
        raise ConfigError(f"{where}.retries must be within 0..20, got {policy.retries}")
    if isinstance(policy, ReferencePolicy):
        _finite(
            f"{where}.request_timeout_s", policy.request_timeout_s, lo=0.0, hi=3600.0, lo_open=True
        )
        _finite(f"{where}.backoff_base_s", policy.backoff_base_s, lo=0.0, hi=3600.0)
        _finite(f"{where}.backoff_max_s", policy.backoff_max_s, lo=0.0, hi=3600.0)
        if policy.backoff_max_s < policy.backoff_base_s:
            raise ConfigError(f"{where}.backoff_max_s must be >= backoff_base_s")


def _check(spec: ExperimentSpec, categories: frozenset[str] | None) -> None:
    exp, fleet = spec.experiment, spec.fleet
    if not _NAME.match(exp.name):
        raise ConfigError(
            f"experiment.name must be 1-64 letters, digits, spaces or _.+- , got {exp.name!r}"
        )
    if not 0 <= exp.seed < 2**63:
        raise ConfigError(f"experiment.seed must be within 0..2**63-1, got {exp.seed}")
    _finite("experiment.duration_s", exp.duration_s, lo=0.0, hi=MAX_DURATION)
    if (fleet.agents is None) == (fleet.rate_per_s is None):
        raise ConfigError(
            "fleet: give exactly one of agents (a count) or rate_per_s (arrivals"
            " per simulated second over experiment.duration_s)"
        )
    if fleet.agents is not None and not 1 <= fleet.agents <= MAX_TASKS:
        raise ConfigError(f"fleet.agents must be within 1..{MAX_TASKS}, got {fleet.agents}")
    if fleet.rate_per_s is not None:
        _finite("fleet.rate_per_s", fleet.rate_per_s, lo=0.0, hi=10_000.0, lo_open=True)
        if exp.duration_s <= 0:
            raise ConfigError("fleet.rate_per_s needs experiment.duration_s > 0")
    if not 1 <= fleet.tasks_per_agent <= 1000:
        raise ConfigError(
            f"fleet.tasks_per_agent must be within 1..1000, got {fleet.tasks_per_agent}"
        )
    _finite("fleet.task_every_s", fleet.task_every_s, lo=0.0, hi=MAX_DURATION)
    if spec.task_count > MAX_TASKS:
        raise ConfigError(
            f"fleet: {spec.task_count} tasks (agents x tasks_per_agent) is over"
            f" the limit of {MAX_TASKS}"
        )
    if not fleet.mix or len(fleet.mix) > 32:
        raise ConfigError("fleet.mix must name 1..32 categories with a weight each")
    for category, weight in fleet.mix.items():
        if categories is not None and category not in categories:
            raise ConfigError(
                f"fleet.mix: unknown category {category!r} (known: {', '.join(sorted(categories))})"
            )
        _finite(f"fleet.mix.{category}", weight, lo=0.0, hi=1e6)
    if sum(fleet.mix.values()) <= 0:
        raise ConfigError("fleet.mix: the weights must not all be 0")
    if spec.server.daily_limit is not None and not 1 <= spec.server.daily_limit <= 10**9:
        raise ConfigError(f"server.daily_limit must be >= 1, got {spec.server.daily_limit}")
    if not 1 <= len(spec.policies) <= 16:
        raise ConfigError("policies: give 1..16 [[policies]] tables")
    names = [policy.name for policy in spec.policies]
    if len(set(names)) != len(names):
        raise ConfigError("policies: every policy needs its own name")
    for i, policy in enumerate(spec.policies):
        _check_policy(i, policy)
    if len(spec.faults) > 100:
        raise ConfigError("faults: at most 100 [[faults]] rules")
    spec.rules  # noqa: B018 -- validates every rule, raising ConfigError naming it


def parse_experiment(
    raw: Mapping[str, Any], *, categories: frozenset[str] | None = None, where: str = "experiment"
) -> ExperimentSpec:
    """Validate a parsed experiment file; ``categories`` are the timing table's names."""
    try:
        spec = msgspec.convert(dict(raw), ExperimentSpec)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {_explain(str(exc))}") from exc
    try:
        _check(spec, categories)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    try:
        usdc_to_atomic(spec.server.price_usdc)
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"{where}: server.price_usdc: {exc}") from exc
    return spec


def _explain(message: str) -> str:
    """msgspec's message, with its ``$.a.b`` path spelled as the TOML key ``a.b``."""
    found = re.match(r"Object contains unknown field `([^`]+)`(?: - at `\$\.?(.*)`)?$", message)
    if found:
        key, at = found.group(1), found.group(2)
        return f"unknown key {(at + '.' if at else '') + key!r}"
    found = re.match(r"Object missing required field `([^`]+)`(?: - at `\$\.?(.*)`)?$", message)
    if found:
        key, at = found.group(1), found.group(2)
        return f"missing key {(at + '.' if at else '') + key!r}"
    return message.replace("`$.", "`").replace("`$`", "the file")


def load_experiment(path: Path, *, categories: frozenset[str] | None = None) -> ExperimentSpec:
    """Read and validate an experiment file (at most 1 MB of TOML)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the experiment file ({exc.strerror})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: an experiment file is at most {MAX_FILE_BYTES} bytes")
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    return parse_experiment(raw, categories=categories, where=str(path))
