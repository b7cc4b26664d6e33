"""The ``mockbankr`` command line: the only place that reads flags and environment.

Every option of ``mockbankr serve`` also reads a ``MOCKBANKR_*`` environment
variable (``--port`` <- ``MOCKBANKR_PORT``, ``--api-key`` <- ``MOCKBANKR_API_KEY``,
space-separated for several keys). ``ledger``, ``rules`` and ``journal`` drive a
running server (see :mod:`mockbankr._cli_remote`).
"""

from __future__ import annotations

import logging
import random
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mockbankr._cli_remote import journal, ledger, rules
from mockbankr.app import create_app
from mockbankr.clock import RealClock, ScaledClock
from mockbankr.contracts.cli import contracts as contracts_cli
from mockbankr.control import is_loopback
from mockbankr.errors import ConfigError
from mockbankr.experiments.cli import experiment as experiment_cli
from mockbankr.rules import load_rules_file
from mockbankr.settings import Settings
from mockbankr.store import MemoryStore
from mockbankr.timing import load_timing
from mockbankr.x402 import DEFAULT_PAY_TO, PaymentTerms, usdc_to_atomic

__all__ = ["main"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _option(*names: str, env: str, **kwargs: Any) -> Callable[[_F], _F]:
    """A ``click.option`` that also reads ``env`` and shows it in ``--help``."""
    return click.option(*names, envvar=env, show_envvar=True, **kwargs)


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {exc.strerror}"
                " (is another server running? pick another --port)"
            ) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mockbankr")
def main() -> None:
    """mockbankr: a local, deterministic, time-controllable Bankr agent API.

    Start the simulator with `mockbankr serve`, then point the official CLI at it:
    BANKR_API_URL=http://127.0.0.1:8402 BANKR_API_KEY=bk_anything bankr prompt "..."
    """


@main.command()
@_option(
    "--host",
    env="MOCKBANKR_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on. Keep loopback unless you mean to share it.",
)
@_option(
    "--port",
    env="MOCKBANKR_PORT",
    type=click.IntRange(0, 65535),
    default=8402,
    show_default=True,
    help="TCP port.",
)
@_option(
    "--speed",
    env="MOCKBANKR_SPEED",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Simulated seconds per wall second: 20 makes a 10 s swap take 0.5 s.",
)
@_option(
    "--seed",
    env="MOCKBANKR_SEED",
    type=int,
    default=None,
    help="Seed every random choice: the same prompts in the same order give the same"
    " ids, schedules and outcomes. Default: random.",
)
@_option(
    "--fixtures",
    env="MOCKBANKR_FIXTURES",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder with your own timing.toml (default: the built-in table).",
)
@_option(
    "--api-key",
    "api_keys",
    env="MOCKBANKR_API_KEY",
    multiple=True,
    help="Accept only this X-API-Key (repeatable). Default: any non-empty key.",
)
@_option(
    "--price-usdc",
    env="MOCKBANKR_PRICE_USDC",
    default="0.10",
    show_default=True,
    help="What /v2/prompt charges per job, in USDC (never settled).",
)
@_option(
    "--pay-to",
    env="MOCKBANKR_PAY_TO",
    default=DEFAULT_PAY_TO,
    show_default=True,
    help="The payTo address of the x402 challenge.",
)
@_option(
    "--rules",
    "rules_file",
    env="MOCKBANKR_RULES",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A TOML file of fault rules ([[rules]] tables) to start with.",
)
@_option(
    "--daily-limit",
    env="MOCKBANKR_DAILY_LIMIT",
    type=click.IntRange(min=1),
    default=None,
    help="Prompts per key per rolling 24 simulated hours (429 beyond).",
)
@_option(
    "--journal-size",
    env="MOCKBANKR_JOURNAL_SIZE",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Requests the journal keeps.",
)
@_option(
    "--admin-token",
    env="MOCKBANKR_ADMIN_TOKEN",
    default=None,
    help="Require Authorization: Bearer TOKEN on /__mock/* (then from any address)."
    " Without it, /__mock/* answers loopback callers only.",
)
@_option(
    "--log-requests/--no-log-requests",
    env="MOCKBANKR_LOG_REQUESTS",
    default=False,
    help="Log one structured line per request.",
)
def serve(
    host: str,
    port: int,
    speed: float,
    seed: int | None,
    fixtures: Path | None,
    api_keys: tuple[str, ...],
    price_usdc: str,
    pay_to: str,
    rules_file: Path | None,
    daily_limit: int | None,
    journal_size: int,
    admin_token: str | None,
    log_requests: bool,
) -> None:
    """Run the simulator (in-memory store) until Ctrl-C."""
    import uvicorn

    try:
        settings = Settings(
            host=host,
            port=port,
            speed=speed,
            seed=seed,
            fixtures=fixtures,
            api_keys=frozenset(api_keys),
            log_requests=log_requests,
            journal_size=journal_size,
            admin_token=admin_token,
            daily_limit=daily_limit,
            rules=tuple(load_rules_file(rules_file)) if rules_file else (),
            payment=PaymentTerms(price_atomic=usdc_to_atomic(price_usdc), pay_to=pay_to),
        )
        table = load_timing(settings.fixtures)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    _check_port_free(host, port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    clock = ScaledClock(speed)
    app = create_app(
        settings,
        clock=clock,
        rng=random.Random(seed),
        store=MemoryStore(),
        table=table,
        payment_clock=RealClock(),  # the SDK signs payments with the real time
    )
    click.echo(
        f"mockbankr listening on http://{host}:{port} (speed {speed:g}x, "
        f"seed {'random' if seed is None else seed}, timing table {table.path})",
        err=True,
    )
    if not is_loopback(host) and admin_token is None:
        click.echo("note: /__mock/* answers loopback callers only (no --admin-token)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


main.add_command(ledger)
main.add_command(rules)
main.add_command(journal)
main.add_command(contracts_cli)
main.add_command(experiment_cli)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
