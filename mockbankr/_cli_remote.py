"""``mockbankr rules | journal``, and what every command that drives a running server shares.

Each such command takes ``--url`` (``MOCKBANKR_URL``), ``--admin-token`` and ``--json``, and
prints a table. Tables never cut a value: piped (not a terminal) they are as wide as their
contents, in a terminal long values fold onto the next line; ``--json`` prints the server's
answer as it came. httpx and rich are imported when a command runs, not when it is listed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mockbankr._click_numbers import NumberParam
from mockbankr.validate import QUERY_LIMIT

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["call", "console", "journal", "new_table", "plural", "rules", "server_options", "show"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: The width of a table that is not printed to a terminal: wide enough for any value.
_PIPE_WIDTH = 10_000


def server_options(command: _F) -> _F:
    """``--url``, ``--admin-token`` and ``--json`` (as ``as_json``)."""
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
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the server's JSON answer instead."
    )(command)


def call(url: str, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
    """One control-plane request; a refusal or an unreachable server is a one-line error."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "POST" and "json" not in kwargs and "content" not in kwargs:
        kwargs["json"] = {}  # the control plane takes JSON only (a CSRF guard)
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


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 rule``, ``2 rules``; ``many`` for irregular plurals.

    Example::

        plural(1, "entry", "entries")  # "1 entry"
    """
    return f"{count} {word if count == 1 else many or word + 's'}"


def new_table(title: str, *columns: str) -> Table:
    """A table whose cells fold rather than being cut with an ellipsis."""
    from rich.table import Table

    table = Table(title=title, min_width=len(title))  # the title on one line
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def console() -> Console:
    """A rich console on stdout that cuts nothing when stdout is a pipe or a file."""
    from rich.console import Console

    stream = sys.stdout
    if stream.isatty():
        return Console(file=stream)
    # not a terminal: as wide as the longest value, no colour codes
    return Console(file=stream, width=_PIPE_WIDTH, color_system=None)


def show(data: Any, as_json: bool, render: Callable[[Any], Table]) -> None:
    """Print ``data`` as JSON, or as the table ``render`` makes of it."""
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    console().print(render(data))


def _rules_table(data: dict[str, Any]) -> Table:
    table = new_table(
        plural(len(data["rules"]), "rule") + ", evaluated in order",
        "id",
        "match",
        "action",
        "times left",
        "probability",
    )
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
    """List, add, delete and clear the fault rules of a running server."""


@rules.command("list")
@server_options
def rules_list(url: str, admin_token: str | None, as_json: bool) -> None:
    """Show the rules in evaluation order."""
    show(call(url, admin_token, "GET", "/__mock/rules"), as_json, _rules_table)


@rules.command("add")
@click.argument("rule", required=False)
@click.option(
    "--file",
    "rules_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Add every [[rules]] table of a TOML file (the format of serve --rules) instead.",
)
@server_options
def rules_add(
    rule: str | None, rules_file: Path | None, url: str, admin_token: str | None, as_json: bool
) -> None:
    """Add a rule given as JSON, or every rule of a TOML --file, e.g.

    mockbankr rules add '{"match": {"path": "/agent/job/*"}, "action": {"respond":
    {"status": 503}}, "times": 2}'
    """
    import msgspec

    from mockbankr.errors import ConfigError
    from mockbankr.rules import load_rules_file, parse_rule

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
    for item in parsed:
        added = call(url, admin_token, "POST", "/__mock/rules", json=msgspec.to_builtins(item))
        click.echo(json.dumps(added) if as_json else f"added rule {added['id']}")


@rules.command("delete")
@click.argument("rule_id")
@server_options
def rules_delete(rule_id: str, url: str, admin_token: str | None, as_json: bool) -> None:
    """Delete one rule by its id (as `rules list` shows it)."""
    from urllib.parse import quote

    deleted = call(url, admin_token, "DELETE", f"/__mock/rules/{quote(rule_id, safe='')}")
    click.echo(json.dumps(deleted) if as_json else f"deleted rule {deleted['deleted']}")


@rules.command("clear")
@server_options
def rules_clear(url: str, admin_token: str | None, as_json: bool) -> None:
    """Remove every rule."""
    answer = call(url, admin_token, "DELETE", "/__mock/rules")
    click.echo(json.dumps(answer) if as_json else "rules cleared")


def _journal_table(data: dict[str, Any]) -> Table:
    table = new_table(
        plural(len(data["entries"]), "request"),
        "sim time",
        "method",
        "path",
        "status",
        "owner",
        "job",
        "fault",
        "ms",
    )
    for e in data["entries"]:
        table.add_row(
            e["simTime"],
            e["method"],
            e["path"],
            "in flight" if e.get("state") == "in-flight" else str(e["status"]),
            e["owner"] or "",
            e["jobId"] or "",
            e["fault"] or "",
            f"{e['latencyMs']:.1f}",
        )
    return table


@click.command()
@click.option("--method", help="Only this HTTP method.")
@click.option("--path", help="Only paths matching this glob, e.g. '/agent/job/*'.")
@click.option("--status", help="Only this response status.")
@click.option("--owner", help="Only this client: a wallet, an API key or its fingerprint (bk_…).")
@click.option("--state", type=click.Choice(["in-flight", "done"]), help="Only these requests.")
@click.option("--job-id", help="Only requests about this job.")
@click.option(
    "--fault", help="Only requests a fault acted on: respond, delay, hang, drop or malformed."
)
@click.option(
    "--limit",
    type=NumberParam(QUERY_LIMIT, integer=True),
    default=50,
    show_default=True,
    help="The newest N matching requests.",
)
@click.option("--clear", is_flag=True, help="Empty the journal instead.")
@server_options
def journal(
    method: str | None,
    path: str | None,
    status: str | None,
    owner: str | None,
    state: str | None,
    job_id: str | None,
    fault: str | None,
    limit: int,
    clear: bool,
    url: str,
    admin_token: str | None,
    as_json: bool,
) -> None:
    """The requests a running server received, oldest first (in flight ones too).

    API keys show as fingerprints (bk_…, then 12 hex digits of the key's SHA-256);
    --owner takes the whole key or its fingerprint."""
    if clear:
        answer = call(url, admin_token, "DELETE", "/__mock/journal")
        click.echo(json.dumps(answer) if as_json else "journal cleared")
        return
    params: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "owner": owner,
        "state": state,
        "job_id": job_id,
        "fault": fault,
    }
    params = {k: v for k, v in params.items() if v is not None}
    size = call(url, admin_token, "GET", "/__mock/journal", params={**params, "limit": 1})["size"]
    params["limit"] = min(limit, size)  # the server refuses more than it keeps
    show(call(url, admin_token, "GET", "/__mock/journal", params=params), as_json, _journal_table)
