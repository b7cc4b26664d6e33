"""Helpers for the experiment tests: shipped examples, shrunk to a small fleet."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec

from mockbankr.experiments import ExperimentSpec, load_experiment
from mockbankr.experiments.runner import run_experiment

EXAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "experiments"


def examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.toml"))


def shrunk(spec: ExperimentSpec, agents: int) -> ExperimentSpec:
    """The same experiment with at most ``agents`` agents (tests keep fleets small)."""
    if spec.fleet.agents is None or spec.fleet.agents <= agents:
        return spec
    return msgspec.structs.replace(spec, fleet=msgspec.structs.replace(spec.fleet, agents=agents))


def run(spec: ExperimentSpec) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    return asyncio.run(run_experiment(spec))


def example(name: str) -> ExperimentSpec:
    return load_experiment(EXAMPLES / f"{name}.toml")
