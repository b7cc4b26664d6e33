"""``mockbankr keys list | load | revoke | rotate``: the API keys of a running server.

Each command is one ``/__mock/keys*`` request (see :mod:`mockbankr._cli_remote` for the
shared ``--url``, ``--admin-token`` and ``--json`` options).

Example::

    mockbankr keys rotate bk_agent --new-key bk_agent_2
    mockbankr keys revoke bk_agent_2
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mockbankr._cli_remote import call, new_table, plural, server_options, show

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["keys"]


def _keys_table(data: dict[str, Any]) -> Table:
    mode = "any other key accepted" if data["open"] else "only these keys"
    title = f"{plural(len(data['keys']), 'key')}, {plural(len(data['accounts']), 'account')}"
    table = new_table(
        f"{title} ({mode})",
        "key",
        "account",
        "plan",
        "agent",
        "read-only",
        "limit",
        "used",
        "revoked",
        "IPs",
    )
    for key in data["keys"]:
        account = data["accounts"].get(key["account"], {})
        limit = key["dailyLimit"] if key["dailyLimit"] is not None else account.get("dailyLimit")
        table.add_row(
            key["key"],
            key["account"],
            account.get("plan") or "",
            "yes" if key["agentApiEnabled"] else "no",
            "yes" if key["readOnly"] else "no",
            "" if limit is None else str(limit),
            str(account.get("used", "")),
            "yes" if key["revoked"] else "",
            ", ".join(key["allowedIps"]),
        )
    return table


@click.group()
def keys() -> None:
    """List, load, revoke and rotate the API keys of a running server."""


@keys.command("list")
@server_options
def keys_list(url: str, admin_token: str | None, as_json: bool) -> None:
    """Show the accounts and keys the server knows now."""
    show(call(url, admin_token, "GET", "/__mock/keys"), as_json, _keys_table)


@keys.command("load")
@click.argument("keys_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@server_options
def keys_load(keys_file: Path, url: str, admin_token: str | None, as_json: bool) -> None:
    """Replace the server's keys by those of a keys file (as for serve --keys)."""
    from mockbankr.accounts import load_keys_file
    from mockbankr.errors import ConfigError

    try:
        config = load_keys_file(keys_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    document = {
        "accounts": {
            a.id: {"plan": a.plan.value} | ({"wallet": a.wallet} if a.wallet else {})
            for a in config.accounts
            if a.plan is not None
        },
        "keys": [{k: v for k, v in key.to_json().items() if v is not None} for key in config.keys],
    }
    show(call(url, admin_token, "PUT", "/__mock/keys", json=document), as_json, _keys_table)


@keys.command("revoke")
@click.argument("key")
@server_options
def keys_revoke(key: str, url: str, admin_token: str | None, as_json: bool) -> None:
    """Revoke KEY: its next request answers 401 Invalid API key."""
    data = call(url, admin_token, "POST", "/__mock/keys/revoke", json={"key": key})
    click.echo(json.dumps(data) if as_json else f"revoked {data['key']['key']}")


@keys.command("rotate")
@click.argument("key")
@click.option("--new-key", default=None, help="The new key's value (default: drawn).")
@server_options
def keys_rotate(
    key: str, new_key: str | None, url: str, admin_token: str | None, as_json: bool
) -> None:
    """Replace KEY by a new key with the same account, flags and limit; print the new key."""
    body = {"key": key} | ({"newKey": new_key} if new_key is not None else {})
    data = call(url, admin_token, "POST", "/__mock/keys/rotate", json=body)
    click.echo(json.dumps(data) if as_json else data["key"]["key"])
