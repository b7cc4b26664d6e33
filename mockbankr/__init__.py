"""mockbankr: a local, deterministic, time-controllable simulator of the Bankr agent API."""

from __future__ import annotations

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
