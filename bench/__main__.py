"""Run the benchmarks and print one table: ``python -m bench [--only NAME ...]``.

Each benchmark runs in turn; its figures go into the table with OK or MISS
against their targets. A missed target is reported, not fatal: the exit status
is 0 unless a benchmark crashed (see bench/README.md for why).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from bench import (
    client,
    experiment,
    instructions,
    keys,
    memory,
    metrics,
    poll,
    rules,
    scale,
    soak,
    startup,
    verdicts,
    x402,
)
from bench.figures import BenchError, Benchmark, Figure

__all__ = ["BENCHMARKS", "main"]

#: Every benchmark, in the order they run. Add a module and a line here.
BENCHMARKS: dict[str, Benchmark] = {
    "poll": poll.run,
    "memory": memory.run,
    "client": client.run,
    "rules": rules.run,
    "rules-add": rules.run_adding,
    "metrics": metrics.run,
    "instructions": instructions.run,
    "x402": x402.run,
    "cli": startup.run_cli,
    "plugin": startup.run_plugin,
    "keys": keys.run,
    "verdicts": verdicts.run,
    "experiment": experiment.run,
    "scale": scale.run,
    "soak": soak.run,
}

logger = logging.getLogger("bench")


def _verdict(figure: Figure) -> str:
    if figure.ok is None:
        return ""
    return "[green]OK[/]" if figure.ok else "[bold red]MISS[/]"


def _table(results: dict[str, list[Figure] | None], seconds: float) -> Table:
    table = Table(title=f"mockbankr benchmarks ({seconds:.0f} s)", title_justify="left")
    table.add_column("benchmark")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("unit")
    table.add_column("target", justify="right")
    table.add_column("result")
    for name, figures in results.items():
        if figures is None:
            table.add_row(
                name, "(could not measure, see the log above)", "", "", "", "[bold red]ERROR[/]"
            )
            continue
        for figure in figures:
            table.add_row(
                name,
                figure.name,
                f"{figure.value:,.3g}" if abs(figure.value) < 100 else f"{figure.value:,.0f}",
                figure.unit,
                figure.target,
                _verdict(figure),
            )
        table.add_section()
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="mockbankr benchmarks (ratios against baselines)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--soak-seconds",
        type=int,
        default=soak.SECONDS,
        metavar="S",
        help=f"length of each soak of the soak benchmark (default {soak.SECONDS})",
    )
    args = parser.parse_args(argv)
    benchmarks = {**BENCHMARKS, "soak": functools.partial(soak.run, args.soak_seconds)}
    console = Console()
    if not console.is_terminal:  # a pipe or a CI log: don't wrap the table at 80 columns
        console = Console(width=120)
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False)],
    )

    selected = [name for name in BENCHMARKS if not args.only or name in args.only]
    results: dict[str, list[Figure] | None] = {}
    started = time.perf_counter()
    for name in selected:
        try:
            results[name] = benchmarks[name]()
        except BenchError as exc:
            logger.error("benchmark %s could not measure: %s", name, exc)
            results[name] = None
        except Exception:
            logger.exception("benchmark %s crashed", name)
            results[name] = None
    console.print(_table(results, time.perf_counter() - started))

    crashed = [name for name, figures in results.items() if figures is None]
    missed = [f.name for figures in results.values() for f in figures or () if f.ok is False]
    if missed:
        console.print(f"[bold red]MISS[/]: {', '.join(missed)} (reported only; exit status 0)")
    if crashed:
        console.print(f"[bold red]ERROR[/]: {', '.join(crashed)} could not measure")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
