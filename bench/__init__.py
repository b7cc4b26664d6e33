"""mockbankr's benchmarks: ratios against a baseline measured in the same run.

Run them with ``make bench`` or ``python -m bench [--only NAME]``; see bench/README.md.
Each benchmark is a module with a ``run()`` returning :class:`~bench.figures.Figure`
values, listed in :data:`bench.__main__.BENCHMARKS`.
"""

from bench.figures import BenchError, Benchmark, Figure, at_least, at_most, info

__all__ = ["BenchError", "Benchmark", "Figure", "at_least", "at_most", "info"]
