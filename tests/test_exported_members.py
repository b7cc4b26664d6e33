"""The public surface of mockbankr is deliberate: pinned here, sorted, and importable."""

from __future__ import annotations

import importlib
import pkgutil

import mockbankr

PUBLIC = [
    "ApiError", "Clock", "ConfigError", "FixtureError", "JobAuthError", "JobRecord", "JobStatus",
    "JobStore", "MemoryStore", "MockbankrError", "PaymentRejected", "PaymentTerms", "RealClock",
    "Rule", "ScaledClock", "Settings", "TimingTable", "VirtualClock", "create_app",
    "load_rules_file", "load_timing", "parse_rule", "usdc_to_atomic",
]  # fmt: skip


def test_the_package_exports_exactly_these_names() -> None:
    assert mockbankr.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(mockbankr, name) is not None


def test_every_module_declares_a_sorted_all_of_names_it_defines() -> None:
    for info in pkgutil.walk_packages(mockbankr.__path__, "mockbankr."):
        module = importlib.import_module(info.name)
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{info.name} has no __all__"
        assert list(exported) == sorted(exported), f"{info.name}.__all__ is not sorted"
        for name in exported:
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name}"
