"""``mockbankr verdicts``: grade the clients of a running server; exit 1 if any check fails.

A CI step runs its client's tests against ``mockbankr serve``, then this command: the
table shows every client's verdict per check, then the evidence of each failure, and the
exit status gates the build (0: nothing failed, 1: a check failed, 2: no verdicts, such as
an unreachable server or a bad threshold).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mockbankr._cli_remote import call, console, new_table, plural, server_options
from mockbankr.verdicts import THRESHOLD_BOUNDS, Thresholds

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["verdicts"]

_F = TypeVar("_F", bound=Callable[..., Any])

_STYLE = {"pass": "green", "fail": "bold red", "not-exercised": "dim"}


class _NoVerdicts(click.ClickException):
    exit_code = 2


def _threshold_options(command: _F) -> _F:
    defaults = Thresholds()
    for name in reversed((*THRESHOLD_BOUNDS, "price_usdc")):
        default = getattr(defaults, name)
        command = click.option(
            "--" + name.replace("_", "-"),
            name,
            default=None,
            metavar="N",
            help=f"Threshold {name} (default {default}; see the README).",
        )(command)
    return command


def _table(data: dict[str, Any]) -> Table:
    title = f"Verdicts of {plural(len(data['clients']), 'client')}, graded at {data['now']}"
    table = new_table(title, "client", "check", "verdict", "count", "USDC wasted")
    for client in data["clients"]:
        agents = ", ".join(client["userAgents"]) or "no User-Agent"
        name = f"{client['owner']}\n[dim]{agents}[/dim]"
        for check, verdict in client["verdicts"].items():
            outcome = verdict["verdict"]
            table.add_row(
                name,
                check,
                f"[{_STYLE[outcome]}]{outcome}[/]",
                str(verdict.get("count", "")),
                verdict.get("usdcWasted", ""),
            )
            name = ""
        table.add_section()
    return table


def _evidence(data: dict[str, Any]) -> list[str]:
    lines = []
    for client in data["clients"]:
        for check in client["failed"]:
            verdict = client["verdicts"][check]
            lines.append(f"{client['owner']} fails {check} ({verdict['count']}x):")
            for incident in verdict["evidence"]:
                lines.append(f"  - {incident['message']}")
                for entry in incident["entries"]:
                    status = f" ({entry['jobStatus']})" if "jobStatus" in entry else ""
                    lines.append(
                        f"      {entry['simTime']} {entry['method']} {entry['path']}"
                        f" -> {entry['status']}{status}"
                    )
    return lines


@click.command()
@click.option(
    "--owner", default=None, help="Only this client: an API key, its fingerprint or a wallet."
)
@click.option("--since", default=None, help="Only requests from then on: unix seconds or ISO-8601.")
@_threshold_options
@server_options
@click.pass_context
def verdicts(
    ctx: click.Context,
    /,
    url: str,
    admin_token: str | None,
    as_json: bool,
    owner: str | None,
    since: str | None,
    **thresholds: str | None,
) -> None:
    """Grade every client's polling, timeout and retry behaviour; exit 1 if one fails.

    Eight checks per client: poll-interval, stop-at-terminal, deadline, retry-after,
    backoff, no-double-pay, abandoned-job, not-found-loop (see the README).
    """
    params = {"owner": owner, "since": since, **thresholds}
    try:
        data = call(
            url,
            admin_token,
            "GET",
            "/__mock/verdicts",
            params={k: v for k, v in params.items() if v is not None},
        )
    except click.ClickException as exc:
        raise _NoVerdicts(exc.message) from exc
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        out = console()
        if not data["clients"]:
            out.print("No client requests in the journal: nothing to grade.")
        else:
            out.print(_table(data))
        for line in _evidence(data):
            click.echo(line)
        note = data["window"]["note"]
        if note:
            click.echo(f"note: {note}", err=True)
    ctx.exit(1 if data["failed"] else 0)
