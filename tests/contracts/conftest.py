"""The committed contracts, and helpers to load and mutate copies of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mockbankr.contracts import Contract, loads_contract

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
PATHS = sorted(CONTRACTS.glob("*.json"))
NAMES = [path.stem for path in PATHS]

Mutation = Callable[[dict[str, Any]], None]


def raw(name: str) -> dict[str, Any]:
    """A committed contract as plain JSON, to mutate."""
    data: dict[str, Any] = json.loads((CONTRACTS / f"{name}.json").read_text())
    return data


def mutated(name: str, mutate: Mutation) -> Contract:
    """A committed contract after ``mutate`` edited its JSON (still a valid file)."""
    data = raw(name)
    mutate(data)
    return loads_contract(json.dumps(data), source=f"mutated {name}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
