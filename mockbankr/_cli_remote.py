"""``mockbankr ledger | rules | journal``: drive a running server from the shell."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
from rich.console import Console
from rich.table import Table

from mockbankr._click_numbers import NumberParam
from mockbankr.errors import ConfigError
from mockbankr.rules import load_rules_file, parse_rule
from mockbankr.validate import QUERY_LIMIT

__all__ = ["journal", "ledger", "rules"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _server_options(command: _F) -> _F:
    command = click.option(
        "--url",
        envvar="MOCKBANKR_URL",
        default="http://127.0.0.1:8402",
        show_default=True,
        show_envvar=True,
        help="The running mockbankr server.",
    )(command)
    command = click.option(
        "--admin-token",
        envvar="MOCKBANKR_ADMIN_TOKEN",
        default=None,
        show_envvar=True,
        help="The server's --admin-token, if it has one.",
    )(command)
    return click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")(command)


def _call(url: str, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(
            method, url.rstrip("/") + path, headers=headers, timeout=10, **kwargs
        )
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach mockbankr at {url}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        detail = body.get("message", body) if isinstance(body, dict) else response.text
        raise click.ClickException(f"{method} {path} answered {response.status_code}: {detail}")
    return body


def _show(data: Any, as_json: bool, render: Callable[[Any], Table]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        Console().print(render(data))


@click.command()
@_server_options
def ledger(url: str, admin_token: str | None, as_json: bool) -> None:
    """What the x402 prompts would have cost (nothing is ever settled)."""

    def render(data: dict[str, Any]) -> Table:
        table = Table(title=f"{data['count']} paid prompts, {data['totalUsdc']} USDC in all")
        for column in ("payer", "jobs", "USDC"):
            table.add_column(column)
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

    _show(_call(url, admin_token, "GET", "/__mock/ledger"), as_json, render)


def _rules_table(data: dict[str, Any]) -> Table:
    table = Table(title=f"{len(data['rules'])} rules, evaluated in order")
    for column in ("id", "match", "action", "times left", "probability"):
        table.add_column(column)
    for rule in data["rules"]:
        table.add_row(
            rule["id"],
            json.dumps(rule.get("match", {})),
            json.dumps(rule.get("action", {})),
            "∞" if rule["remaining"] is None else str(rule["remaining"]),
            "" if rule.get("probability") is None else str(rule["probability"]),
        )
    return table


@click.group()
def rules() -> None:
    """List, add and clear the fault rules of a running server."""


@rules.command("list")
@_server_options
def rules_list(url: str, admin_token: str | None, as_json: bool) -> None:
    """Show the rules in evaluation order."""
    _show(_call(url, admin_token, "GET", "/__mock/rules"), as_json, _rules_table)


@rules.command("add")
@click.argument("rule", required=False)
@click.option(
    "--file",
    "rules_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Add every [[rules]] table of a TOML file instead.",
)
@_server_options
def rules_add(
    rule: str | None, rules_file: Path | None, url: str, admin_token: str | None, as_json: bool
) -> None:
    """Add a rule given as JSON, e.g.

    mockbankr rules add '{"match": {"path": "/agent/job/*"}, "action": {"respond":
    {"status": 503}}, "times": 2}'
    """
    if (rule is None) == (rules_file is None):
        raise click.UsageError("give a rule as JSON, or --file FILE")
    try:
        if rules_file is not None:
            parsed = load_rules_file(rules_file)
        else:
            assert rule is not None
            parsed = [parse_rule(json.loads(rule), where="the rule")]
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"the rule is not valid JSON: {exc}") from exc
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    import msgspec

    for item in parsed:
        added = _call(url, admin_token, "POST", "/__mock/rules", json=msgspec.to_builtins(item))
        click.echo(json.dumps(added) if as_json else f"added rule {added['id']}")


@rules.command("clear")
@_server_options
def rules_clear(url: str, admin_token: str | None, as_json: bool) -> None:
    """Remove every rule."""
    _call(url, admin_token, "DELETE", "/__mock/rules")
    click.echo("{}" if as_json else "rules cleared")


@click.command()
@click.option("--method", help="Only this HTTP method.")
@click.option("--path", help="Only paths matching this glob, e.g. '/agent/job/*'.")
@click.option("--status", help="Only this response status.")
@click.option("--owner", help="Only this API key or wallet.")
@click.option(
    "--limit",
    type=NumberParam(QUERY_LIMIT, integer=True),
    default=50,
    show_default=True,
    help="The newest N matching requests.",
)
@click.option("--clear", is_flag=True, help="Empty the journal instead.")
@_server_options
def journal(
    method: str | None,
    path: str | None,
    status: str | None,
    owner: str | None,
    limit: int,
    clear: bool,
    url: str,
    admin_token: str | None,
    as_json: bool,
) -> None:
    """The requests a running server received, oldest first."""
    if clear:
        _call(url, admin_token, "DELETE", "/__mock/journal")
        click.echo("journal cleared")
        return
    params = {"method": method, "path": path, "status": status, "owner": owner, "limit": limit}
    data = _call(
        url,
        admin_token,
        "GET",
        "/__mock/journal",
        params={k: v for k, v in params.items() if v is not None},
    )

    def render(data: dict[str, Any]) -> Table:
        table = Table(title=f"{len(data['entries'])} requests")
        for column in ("sim time", "method", "path", "status", "owner", "job", "fault", "ms"):
            table.add_column(column)
        for e in data["entries"]:
            table.add_row(
                e["simTime"],
                e["method"],
                e["path"],
                str(e["status"]),
                e["owner"] or "",
                e["jobId"] or "",
                e["fault"] or "",
                f"{e['latencyMs']:.1f}",
            )
        return table

    _show(data, as_json, render)
