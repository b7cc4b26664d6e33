"""mockbankr: a local, deterministic, time-controllable simulator of the Bankr agent API."""

from __future__ import annotations

from mockbankr.app import create_app
from mockbankr.clock import Clock, RealClock, ScaledClock, VirtualClock
from mockbankr.errors import ApiError, ConfigError, FixtureError, MockbankrError
from mockbankr.jobs import JobRecord, JobStatus
from mockbankr.settings import Settings
from mockbankr.store import JobStore, MemoryStore
from mockbankr.timing import TimingTable, load_timing

__all__ = [
    "ApiError",
    "Clock",
    "ConfigError",
    "FixtureError",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "MemoryStore",
    "MockbankrError",
    "RealClock",
    "ScaledClock",
    "Settings",
    "TimingTable",
    "VirtualClock",
    "create_app",
    "load_timing",
]

__version__ = "0.1.0"
