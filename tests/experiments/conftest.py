"""Helpers for the experiment tests: shipped examples, shrunk to a small fleet."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
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


@contextlib.contextmanager
def serve(*flags: str) -> Iterator[str]:
    """``mockbankr serve --seed 5 FLAGS`` on a free loopback port, stopped at the end."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mockbankr"),
            "serve",
            "--port",
            str(port),
            "--seed",
            "5",
            *flags,
        ],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # at most 30 s to start
            try:
                httpx.get(f"{url}/_health", timeout=1.0)
                break
            except httpx.HTTPError:
                if server.poll() is not None:
                    raise RuntimeError(f"mockbankr serve {' '.join(flags)} exited") from None
                threading.Event().wait(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)
