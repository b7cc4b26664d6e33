"""``mockbankr experiment``: run an experiment file, or report on a server's records.

Registered in :mod:`mockbankr.cli` with one line, ``main.add_command(experiment)``.

Example::

    mockbankr experiment run fixtures/experiments/storm-503.toml --out out/storm
    mockbankr experiment report --base-url http://127.0.0.1:8402 --out out/locust
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mockbankr.errors import ConfigError
from mockbankr.experiments.spec import Policy, load_experiment
from mockbankr.timing import load_timing

__all__ = ["EXTRA_HINT", "experiment"]


EXTRA_HINT = "the experiments need the reference client: pip install 'mockbankr[experiments]'"


def _needs_client() -> Any:
    """:mod:`mockbankr.experiments.runner`, or a clear error when ``bankr_client`` is absent."""
    try:
        from mockbankr.experiments import runner
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("mockbankr"):
            raise
        raise click.ClickException(f"{EXTRA_HINT} (no module named {exc.name!r})") from exc
    return runner


@click.group()
def experiment() -> None:
    """Compare polling, timeout and retry policies on identical work."""


def _summary(console: Console, results: dict[str, Any]) -> None:
    from mockbankr.experiments.report import summary_headers, summary_rows

    rows = summary_rows(results)
    table = Table(
        title=f"experiment {results['experiment']['experiment']['name']}"
        f" ({results['mode']}, {results['tasks']} tasks per policy)",
        title_justify="left",
    )
    table.add_column("metric")
    for name, _ in rows:
        table.add_column(name, justify="right")
    for i, header in enumerate(summary_headers()):
        table.add_row(header, *(_cell(values[i]) for _, values in rows))
    console.print(table)
    for policy in results["policies"]:
        note = policy.get("journal", {}).get("note")
        if note:
            console.print(f"[yellow]note[/] {policy['name']}: {note}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.4g}" if isinstance(value, float) else str(value)


@experiment.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for results.json, jobs.csv and report.html (default: experiment-NAME).",
)
@click.option(
    "--base-url",
    default=None,
    metavar="URL",
    help="Run live, in real time, against this running mockbankr server"
    " (it is reset before each policy).",
)
@click.option(
    "--admin-token",
    envvar="MOCKBANKR_ADMIN_TOKEN",
    default=None,
    help="The server's admin token, if it has one (live runs).",
)
@click.option(
    "--fixtures",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder with your own timing.toml (in-process runs).",
)
@click.option("--no-report", is_flag=True, help="Skip report.html (no matplotlib needed).")
def run_command(
    file: Path,
    out: Path | None,
    base_url: str | None,
    admin_token: str | None,
    fixtures: Path | None,
    no_report: bool,
) -> None:
    """Run every policy of FILE.toml and write results.json, jobs.csv and report.html."""
    from mockbankr.experiments.output import write_outputs

    run_experiment = _needs_client().run_experiment

    console = Console(stderr=True)
    try:
        table = load_timing(fixtures)
        spec = load_experiment(file, categories=frozenset(table.categories))
        if not no_report:
            from mockbankr.experiments.report import _pyplot

            _pyplot()  # fail before the run, not after it, when matplotlib is missing
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    text = file.read_text("utf-8")
    out = out or Path(f"experiment-{spec.experiment.name}")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sim {task.fields[sim]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:

        def on_policy(policy: Policy, total: int) -> Callable[[float], None]:
            task = progress.add_task(policy.name, total=total, sim="0 s")

            def done(now: float) -> None:
                progress.update(task, advance=1, sim=f"{now:,.0f} s")

            return done

        try:
            if base_url:
                from mockbankr.experiments.live import run_blocking, run_live

                results, rows = run_blocking(
                    run_live(
                        spec,
                        base_url,
                        source=str(file),
                        on_policy=on_policy,
                        admin_token=admin_token,
                    )
                )
            else:
                results, rows = asyncio.run(
                    run_experiment(spec, table=table, source=str(file), on_policy=on_policy)
                )
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
    Console().print()
    _summary(Console(), results)
    for path in write_outputs(out, results, rows, text, report=not no_report):
        click.echo(f"wrote {path}")


@experiment.command("report")
@click.option(
    "--base-url",
    required=True,
    metavar="URL",
    help="The server whose journal, jobs and ledger to report on.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("experiment-report"),
    show_default=True,
    help="Folder for results.json, jobs.csv and report.html.",
)
@click.option(
    "--name",
    default="server",
    show_default=True,
    help="The name the report gives to the server's clients.",
)
@click.option(
    "--admin-token",
    envvar="MOCKBANKR_ADMIN_TOKEN",
    default=None,
    help="The server's admin token, if it has one.",
)
@click.option("--no-report", is_flag=True, help="Skip report.html (no matplotlib needed).")
def report_command(
    base_url: str, out: Path, name: str, admin_token: str | None, no_report: bool
) -> None:
    """Build the report from a server's records (after a Locust run, say)."""
    from mockbankr.experiments.output import write_outputs

    _needs_client()
    from mockbankr.experiments.live import report_from_server

    try:
        results, rows = asyncio.run(
            report_from_server(base_url, name=name, admin_token=admin_token)
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    _summary(Console(), results)
    for path in write_outputs(
        out, results, rows, "(built from the server's records)", report=not no_report
    ):
        click.echo(f"wrote {path}")
