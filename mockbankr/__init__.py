"""mockbankr: a local, deterministic, time-controllable simulator of the Bankr agent API.

The public names below are imported on first use (PEP 562), so ``import mockbankr`` (and
``import mockbankr.clock``) stays cheap: the app, Starlette and eth-account load only when a
name that needs them is read.

Example::

    from mockbankr import MemoryStore, Settings, VirtualClock, create_app
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mockbankr.app import create_app
    from mockbankr.clock import Clock, RealClock, ScaledClock, VirtualClock
    from mockbankr.errors import (
        ApiError,
        ConfigError,
        FixtureError,
        JobAuthError,
        MockbankrError,
        PaymentRejected,
    )
    from mockbankr.jobs import JobRecord, JobStatus
    from mockbankr.money import PaymentTerms, usdc_to_atomic
    from mockbankr.rules import Rule, load_rules_file, parse_rule
    from mockbankr.settings import Settings
    from mockbankr.store import JobStore, MemoryStore
    from mockbankr.timing import TimingTable, load_timing

__all__ = [
    "ApiError",
    "Clock",
    "ConfigError",
    "FixtureError",
    "JobAuthError",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "MemoryStore",
    "MockbankrError",
    "PaymentRejected",
    "PaymentTerms",
    "RealClock",
    "Rule",
    "ScaledClock",
    "Settings",
    "TimingTable",
    "VirtualClock",
    "create_app",
    "load_rules_file",
    "load_timing",
    "parse_rule",
    "usdc_to_atomic",
]

__version__ = "0.1.0"

#: Where each public name lives (the module is imported when the name is first read).
_HOMES = {
    "ApiError": "mockbankr.errors",
    "Clock": "mockbankr.clock",
    "ConfigError": "mockbankr.errors",
    "FixtureError": "mockbankr.errors",
    "JobAuthError": "mockbankr.errors",
    "JobRecord": "mockbankr.jobs",
    "JobStatus": "mockbankr.jobs",
    "JobStore": "mockbankr.store",
    "MemoryStore": "mockbankr.store",
    "MockbankrError": "mockbankr.errors",
    "PaymentRejected": "mockbankr.errors",
    "PaymentTerms": "mockbankr.money",
    "RealClock": "mockbankr.clock",
    "Rule": "mockbankr.rules",
    "ScaledClock": "mockbankr.clock",
    "Settings": "mockbankr.settings",
    "TimingTable": "mockbankr.timing",
    "VirtualClock": "mockbankr.clock",
    "create_app": "mockbankr.app",
    "load_rules_file": "mockbankr.rules",
    "load_timing": "mockbankr.timing",
    "parse_rule": "mockbankr.rules",
    "usdc_to_atomic": "mockbankr.money",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mockbankr' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next read is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
