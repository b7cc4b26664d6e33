"""``mockbankr clock | jobs | ledger | reset``: read and move a running server's state.

Each command is one ``/__mock/*`` request (see :mod:`mockbankr._cli_remote` for the shared
``--url``, ``--admin-token`` and ``--json`` options).

Example::

    mockbankr clock advance 30
    mockbankr jobs list --status processing
    mockbankr jobs outcome job_0123456789AB failed --error "Insufficient liquidity"
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

from mockbankr._cli_remote import call, new_table, plural, server_options, show

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["clock", "jobs", "ledger", "reset"]

_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")


def _clock_table(data: dict[str, Any]) -> Table:
    table = new_table("the server's clock", "now", "unix", "kind", "speed")
    speed = "" if data["speed"] is None else f"{data['speed']:g}x"
    table.add_row(data["now"], f"{data['unix']:.3f}", data["kind"], speed)
    return table


@click.group()
def clock() -> None:
    """Read the simulated clock, move it forward, or change its speed."""


@clock.command("get")
@server_options
def clock_get(url: str, admin_token: str | None, as_json: bool) -> None:
    """The simulated time now, the kind of clock and its speed."""
    show(call(url, admin_token, "GET", "/__mock/clock"), as_json, _clock_table)


@clock.command("advance")
@click.argument("seconds", type=click.FloatRange(min=0))
@server_options
def clock_advance(seconds: float, url: str, admin_token: str | None, as_json: bool) -> None:
    """Move the clock SECONDS simulated seconds forward (jobs finish as if time had passed)."""
    answer = call(url, admin_token, "POST", "/__mock/clock", json={"advance": seconds})
    show(answer, as_json, _clock_table)


@clock.command("speed")
@click.argument("speed", type=click.FloatRange(min=0, min_open=True))
@server_options
def clock_speed(speed: float, url: str, admin_token: str | None, as_json: bool) -> None:
    """Run SPEED simulated seconds per wall second from now on (serve's --speed, live)."""
    answer = call(url, admin_token, "POST", "/__mock/clock", json={"speed": speed})
    show(answer, as_json, _clock_table)


def _jobs_table(title: str, listed: list[dict[str, Any]]) -> Table:
    table = new_table(title, "job", "status", "category", "owner", "created", "finishes", "fault")
    for job in listed:
        schedule = job["schedule"]
        table.add_row(
            job["jobId"],
            job["status"],
            job["category"],
            job["owner"],
            schedule["createdAt"],
            schedule["finishedAt"] or "never",
            "" if job["fault"] is None else json.dumps(job["fault"]),
        )
    return table


@click.group()
def jobs() -> None:
    """List the jobs of a running server, show one, or force how one ends."""


@jobs.command("list")
@click.option("--status", type=click.Choice(_STATUSES), help="Only jobs in this status now.")
@click.option("--owner", help="Only jobs of this API key or wallet.")
@click.option("--category", help="Only jobs of this timing-table category.")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@server_options
def jobs_list(
    status: str | None,
    owner: str | None,
    category: str | None,
    offset: int,
    limit: int,
    url: str,
    admin_token: str | None,
    as_json: bool,
) -> None:
    """Jobs in submission order, with their status now and their schedule."""
    params: dict[str, Any] = {"status": status, "owner": owner, "category": category}
    params = {k: v for k, v in params.items() if v is not None}
    data = call(
        url, admin_token, "GET", "/__mock/jobs", params={**params, "offset": offset, "limit": limit}
    )

    def render(data: dict[str, Any]) -> Table:
        title = f"{plural(len(data['jobs']), 'job')} of {data['total']} from {data['offset']}"
        return _jobs_table(title, data["jobs"])

    show(data, as_json, render)


@jobs.command("show")
@click.argument("job_id")
@server_options
def jobs_show(job_id: str, url: str, admin_token: str | None, as_json: bool) -> None:
    """One job: its schedule, and the status body a client would read now."""
    data = call(url, admin_token, "GET", f"/__mock/jobs/{quote(job_id, safe='')}")

    def render(data: dict[str, Any]) -> Table:
        table = _jobs_table(f"job {data['jobId']}", [data])
        table.caption = json.dumps(data["body"])
        return table

    show(data, as_json, render)


@jobs.command("outcome")
@click.argument("job_id")
@click.argument("outcome", type=click.Choice(["completed", "failed"]), required=False)
@click.option("--error", help="The failed job's error text (with outcome failed).")
@click.option(
    "--finish-in",
    type=click.FloatRange(min=0),
    help="Finish SECONDS simulated seconds from now instead of on schedule.",
)
@server_options
def jobs_outcome(
    job_id: str,
    outcome: str | None,
    error: str | None,
    finish_in: float | None,
    url: str,
    admin_token: str | None,
    as_json: bool,
) -> None:
    """Force how a job that has not finished ends (OUTCOME), or when (--finish-in), or both."""
    if outcome is None and finish_in is None:
        raise click.UsageError("give an OUTCOME (completed or failed), --finish-in, or both")
    body: dict[str, Any] = {"outcome": outcome, "error": error, "finish_in": finish_in}
    body = {k: v for k, v in body.items() if v is not None}
    data = call(
        url, admin_token, "POST", f"/__mock/jobs/{quote(job_id, safe='')}/outcome", json=body
    )
    show(data, as_json, lambda data: _jobs_table(f"job {data['jobId']}", [data]))


@click.command()
@server_options
def ledger(url: str, admin_token: str | None, as_json: bool) -> None:
    """What the x402 prompts would have cost (nothing is ever settled)."""

    def render(data: dict[str, Any]) -> Table:
        title = f"{plural(data['count'], 'paid prompt')}, {data['totalUsdc']} USDC in all"
        table = new_table(title, "payer", "jobs", "USDC")
        for payer, row in data["byPayer"].items():
            table.add_row(payer, str(row["count"]), row["totalUsdc"])
        for status, row in data["byStatus"].items():
            if row["count"]:
                table.add_row(f"[dim]status {status}[/dim]", str(row["count"]), row["totalUsdc"])
        for group in data["duplicates"]:
            table.add_row(
                "[yellow]likely duplicate submits[/yellow]",
                ", ".join(group["jobIds"]),
                f"+{group['extraUsdc']}",
            )
        return table

    show(call(url, admin_token, "GET", "/__mock/ledger"), as_json, render)


@click.command()
@server_options
def reset(url: str, admin_token: str | None, as_json: bool) -> None:
    """Forget jobs, payments, the journal and limits; back to the rules the server began with."""
    answer = call(url, admin_token, "POST", "/__mock/reset")
    click.echo(
        json.dumps(answer) if as_json else f"reset: back to {plural(answer['rules'], 'start rule')}"
    )
