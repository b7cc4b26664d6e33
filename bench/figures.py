"""What a benchmark returns: figures, each with its target and whether it was met.

A benchmark is a plain function returning a list of :class:`Figure`. Figures that
carry a target come from :func:`at_least` / :func:`at_most`; the raw numbers a
ratio is made of come from :func:`info` and have no target.

Example::

    def run() -> list[Figure]:
        ratio = mock_rps / bare_rps
        return [
            at_least("poll: mock / bare throughput", ratio, "x", 0.75),
            info("poll: bare throughput", bare_rps, "req/s"),
        ]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

__all__ = ["BenchError", "Benchmark", "Figure", "at_least", "at_most", "info"]


class Figure(NamedTuple):
    """One measured number.

    ``target`` is the condition as text (``">= 0.75"``), empty for a raw number;
    ``ok`` is ``None`` for a raw number, else whether the target was met.
    """

    name: str
    value: float
    unit: str
    target: str
    ok: bool | None


class BenchError(RuntimeError):
    """A benchmark cannot measure (a tool is missing, a server did not start, errors on the wire).

    Reported as an ERROR row without a traceback; the exit status is then 1.
    """


#: A benchmark: runs, bounded in time, and returns its figures (raises if it cannot run).
Benchmark = Callable[[], list[Figure]]


def at_least(name: str, value: float, unit: str, bound: float) -> Figure:
    """A figure whose target is ``value >= bound``."""
    return Figure(name, value, unit, f">= {bound:g}", value >= bound)


def at_most(name: str, value: float, unit: str, bound: float) -> Figure:
    """A figure whose target is ``value <= bound``."""
    return Figure(name, value, unit, f"<= {bound:g}", value <= bound)


def info(name: str, value: float, unit: str) -> Figure:
    """A raw number without a target (the parts a ratio is made of, timings, counts)."""
    return Figure(name, value, unit, "", None)
