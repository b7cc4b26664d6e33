"""The ``mockbankr`` command line: the only place that reads flags and environment.

Every option of ``mockbankr serve`` also reads a ``MOCKBANKR_*`` environment
variable (``--port`` <- ``MOCKBANKR_PORT``, ``--api-key`` <- ``MOCKBANKR_API_KEY``,
space-separated for several keys). ``ledger``, ``rules``, ``journal``, ``clock``,
``jobs``, ``reset``, ``keys`` and ``verdicts`` drive a running server (see
:mod:`mockbankr._cli_remote`).

Subcommands are imported when they run, so ``mockbankr --help`` loads neither the app
nor the contract harness; ``mockbankr contracts`` needs the ``mockbankr[contracts]``
extra and says so (exit 2) when it is missing.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mockbankr._click_numbers import NumberParam
from mockbankr.validate import (
    DAILY_LIMIT,
    GRACEFUL_TIMEOUT,
    JOURNAL_BYTES,
    JOURNAL_SIZE,
    PORT,
    SEED,
    SPEED,
)

__all__ = ["CONTRACTS_EXTRA_HINT", "main"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: The one line ``mockbankr contracts`` prints (exit 2) without the harness's dependencies.
CONTRACTS_EXTRA_HINT = (
    "mockbankr contracts needs the contracts extra: pip install 'mockbankr[contracts]'"
)

#: The x402 challenge's default ``payTo`` (a burn address), shown in ``--help``.
_DEFAULT_PAY_TO_SHOWN = "0x000000000000000000000000000000000000dEaD"

#: Subcommands imported only when they run: name -> (module, attribute, one-line help).
_LAZY: dict[str, tuple[str, str, str]] = {
    "clock": ("mockbankr._cli_state", "clock", "Read the clock, advance it or set its speed."),
    "contracts": (
        "mockbankr.contracts.cli",
        "contracts",
        "Record, check and verify the contract files (the contracts extra).",
    ),
    "experiment": (
        "mockbankr.experiments.cli",
        "experiment",
        "Compare polling, timeout and retry policies on identical work.",
    ),
    "jobs": ("mockbankr._cli_state", "jobs", "List jobs, show one, force its outcome."),
    "journal": ("mockbankr._cli_remote", "journal", "The requests a running server received."),
    "keys": ("mockbankr._cli_keys", "keys", "List, load, revoke and rotate the API keys."),
    "ledger": ("mockbankr._cli_state", "ledger", "What the x402 prompts would have cost."),
    "reset": ("mockbankr._cli_state", "reset", "Forget jobs, payments, journal and limits."),
    "rules": ("mockbankr._cli_remote", "rules", "List, add, delete and clear fault rules."),
    "verdicts": (
        "mockbankr._cli_verdicts",
        "verdicts",
        "Grade each client's polling and retries; exit 1 if a check fails.",
    ),
}


def _missing_extra(missing: str) -> click.Command:
    """A command that says which extra to install, whatever it is given, and exits 2."""

    def run() -> None:
        click.echo(f"Error: {CONTRACTS_EXTRA_HINT} (no module named {missing!r})", err=True)
        sys.exit(2)

    return click.Command(
        "contracts",
        callback=run,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


class _LazyGroup(click.Group):
    """A group whose :data:`_LAZY` subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in _LAZY:
            return command
        module_name, attribute, _ = _LAZY[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if cmd_name != "contracts" or (exc.name or "").startswith("mockbankr"):
                raise
            return _missing_extra(exc.name or "?")
        loaded: click.Command = getattr(module, attribute)
        return loaded

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in _LAZY and name not in self.commands:
                rows.append((name, _LAZY[name][2]))
            else:
                command = self.commands[name]
                if not command.hidden:
                    rows.append((name, command.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _option(*names: str, env: str, **kwargs: Any) -> Callable[[_F], _F]:
    """A ``click.option`` that also reads ``env`` and shows it in ``--help``."""
    return click.option(*names, envvar=env, show_envvar=True, **kwargs)


def _check_port_free(host: str, port: int) -> None:
    """Bind once to fail early with a hint that fits the cause (port taken, host unusable)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                hint = "is another server running? pick another --port"
            elif exc.errno == errno.EACCES:
                hint = "ports below 1024 need privileges: pick another --port"
            else:
                hint = "--host must be an address or name of this machine, e.g. 127.0.0.1"
            reason = exc.strerror or str(exc)
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {reason} ({hint})"
            ) from exc


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mockbankr")
def main() -> None:
    """mockbankr: a local, deterministic, time-controllable Bankr agent API.

    Start the simulator with `mockbankr serve`, then point the official CLI at it:
    BANKR_API_URL=http://127.0.0.1:8402 BANKR_API_KEY=bk_anything bankr prompt "..."

    Every other command drives a running server (--url, default http://127.0.0.1:8402).
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
    type=NumberParam(PORT, integer=True),
    default=8402,
    show_default=True,
    help="TCP port.",
)
@_option(
    "--speed",
    env="MOCKBANKR_SPEED",
    type=NumberParam(SPEED),
    default=1.0,
    show_default=True,
    help="Simulated seconds per wall second: 20 makes a 10 s swap take 0.5 s; 0 stops"
    ' time until POST /__mock/clock moves it. POST /__mock/reset with {"clock": true}'
    " puts the clock back to the wall time and this speed.",
)
@_option(
    "--seed",
    env="MOCKBANKR_SEED",
    type=NumberParam(SEED, integer=True),
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
    help="Accept only this X-API-Key (repeatable; in MOCKBANKR_API_KEY, several keys are"
    " separated by spaces). Default: any non-empty key.",
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
    default=None,
    show_default=_DEFAULT_PAY_TO_SHOWN,
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
    "--keys",
    "keys_file",
    env="MOCKBANKR_KEYS",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A TOML file of accounts ([accounts.NAME] plan = club|max-mode|none) and their"
    " keys ([[keys]] key, account, agentApiEnabled, readOnly, dailyLimit, revoked,"
    " allowedIps). Default: any key, or the --api-key list.",
)
@_option(
    "--daily-limit",
    env="MOCKBANKR_DAILY_LIMIT",
    type=NumberParam(DAILY_LIMIT, integer=True),
    default=None,
    help="Prompts per key per rolling 24 simulated hours (429 beyond); without --keys.",
)
@_option(
    "--journal-size",
    env="MOCKBANKR_JOURNAL_SIZE",
    type=NumberParam(JOURNAL_SIZE, integer=True),
    default=10_000,
    show_default=True,
    help="Requests the journal keeps (GET /__mock/journal), newest last.",
)
@_option(
    "--journal-bytes",
    env="MOCKBANKR_JOURNAL_BYTES",
    type=NumberParam(JOURNAL_BYTES, integer=True),
    default=64 * 1024 * 1024,
    show_default=True,
    help="About how many bytes the journal keeps (64 MiB by default, at least 65536;"
    " estimated from each entry's text; the oldest entries go first when over). Each"
    " text field of an entry is cut to 256 characters, and an API key shows only as its"
    " fingerprint (bk_…, then 12 hex digits of its SHA-256).",
)
@_option(
    "--admin-token",
    env="MOCKBANKR_ADMIN_TOKEN",
    default=None,
    help="Require Authorization: Bearer TOKEN on /__mock/* (then from any address); at"
    " least 8 characters. Without it, /__mock/* answers loopback callers only.",
)
@_option(
    "--log-requests/--no-log-requests",
    env="MOCKBANKR_LOG_REQUESTS",
    default=False,
    help="Log one structured line per request.",
)
@_option(
    "--metrics/--no-metrics",
    env="MOCKBANKR_METRICS",
    default=True,
    show_default=True,
    help="Prometheus metrics at GET /__mock/metrics (requests by route and status, jobs,"
    " USDC that would have been spent, fault firings, job durations). --no-metrics stops"
    " counting requests, and /__mock/metrics answers 404.",
)
@_option(
    "--store",
    env="MOCKBANKR_STORE",
    default="memory",
    show_default=True,
    help="Where jobs, payments, nonces, the clock, rules, limits, keys and metrics live:"
    " memory (this process), or redis://host:port/db, shared by every server on that Redis"
    " (the redis extra: pip install 'mockbankr[redis]').",
)
@_option(
    "--workers",
    env="MOCKBANKR_WORKERS",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes on the one port; more than 1 needs --store redis://...",
)
@_option(
    "--server",
    env="MOCKBANKR_SERVER",
    type=click.Choice(["uvicorn", "granian"]),
    default="uvicorn",
    show_default=True,
    help="The HTTP server: uvicorn, or granian (Rust I/O; the granian extra:"
    " pip install 'mockbankr[granian]').",
)
@_option(
    "--graceful-timeout",
    env="MOCKBANKR_GRACEFUL_TIMEOUT",
    type=NumberParam(GRACEFUL_TIMEOUT),
    default=5.0,
    show_default=True,
    help="On SIGTERM or SIGINT, hung and delayed requests end at once (503); the rest in"
    " flight get this many seconds before they are cancelled and the server exits.",
)
def serve(**params: Any) -> None:
    """Run the simulator until Ctrl-C (in memory, or shared on Redis with --store).

    Open http://127.0.0.1:8402/__mock/ui in a browser for the live dashboard (clock,
    jobs, journal, ledger, rules, verdicts); with --admin-token, type the token into
    the page. Prometheus scrapes GET /__mock/metrics (see --metrics).
    """
    from mockbankr.errors import ConfigError, StoreUnavailable

    host: str = params["host"]
    port: int = params["port"]
    workers: int = params["workers"]
    server: str = params["server"]
    store_spec: str = params["store"]
    if workers > 1 and store_spec == "memory":
        raise click.UsageError(
            f"--workers {workers} needs a shared store: each worker would have its own jobs"
            " with --store memory; use --store redis://host:port/db"
        )
    try:
        app, table = _build_app(params)  # in this process too: every error shows before forking
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        _check_store(app)
    except StoreUnavailable as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    _check_port_free(host, port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    seed = params["seed"]
    click.echo(
        f"mockbankr listening on http://{host}:{port} (speed {params['speed']:g}x, "
        f"seed {'random' if seed is None else seed}, timing table {table.path}, "
        f"store {getattr(app.state.simulator.store, 'url', 'memory')}, {server}"
        + (f", {workers} workers" if workers > 1 else "")
        + ")",
        err=True,
    )
    from mockbankr.control import is_loopback

    click.echo(f"dashboard: http://{host}:{port}/__mock/ui", err=True)
    if not is_loopback(host) and params["admin_token"] is None:
        click.echo("note: /__mock/* answers loopback callers only (no --admin-token)", err=True)
    from mockbankr import serving

    graceful_timeout: float = params["graceful_timeout"]
    if server == "granian":
        os.environ[_WORKER_PARAMS] = _dump_params(params)
        try:
            serving.run_granian(
                f"{__name__}:worker_app",
                host=host,
                port=port,
                workers=workers,
                graceful_timeout=graceful_timeout,
            )
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
    elif workers > 1:
        os.environ[_WORKER_PARAMS] = _dump_params(params)
        serving.run_uvicorn_workers(
            f"{__name__}:worker_app",
            host=host,
            port=port,
            workers=workers,
            graceful_timeout=graceful_timeout,
        )
    else:
        serving.run_uvicorn(app, host=host, port=port, graceful_timeout=graceful_timeout)


#: The environment variable that hands ``serve``'s parameters to its worker processes.
_WORKER_PARAMS = "MOCKBANKR__SERVE_PARAMS"


def _dump_params(params: dict[str, Any]) -> str:
    import json

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple):
            return list(value)
        return value

    return json.dumps({name: plain(value) for name, value in params.items()})


def worker_app() -> Any:
    """The app of one worker process (``--workers N`` or ``--server granian``): built from
    the parameters ``serve`` checked and handed down."""
    import json

    raw = json.loads(os.environ[_WORKER_PARAMS])
    for name in ("fixtures", "rules_file", "keys_file"):
        if raw.get(name) is not None:
            raw[name] = Path(raw[name])
    raw["api_keys"] = tuple(raw["api_keys"])
    app, _ = _build_app(raw)
    from mockbankr import serving

    serving.register_lifetime(app.state.lifetime)
    return app


def _check_store(app: Any) -> None:
    """Ping a shared store once (an unreachable one is a StoreUnavailable naming its URL)."""
    import asyncio

    store = app.state.simulator.store
    ping = getattr(store, "ping", None)
    if ping is None:
        return

    async def check() -> None:
        try:
            await ping()
        finally:
            await store.aclose()  # this loop ends here; the server's loop connects anew

    asyncio.run(check())


def _build_app(params: dict[str, Any]) -> tuple[Any, Any]:
    """The app ``serve`` runs, and its timing table, from the command's parameters."""
    import random

    from mockbankr.accounts import load_keys_file
    from mockbankr.app import create_app
    from mockbankr.clock import RealClock, ScaledClock
    from mockbankr.money import PaymentTerms, usdc_to_atomic
    from mockbankr.rules import load_rules_file
    from mockbankr.settings import Settings
    from mockbankr.store import open_store
    from mockbankr.timing import load_timing

    pay_to = params["pay_to"]
    terms: dict[str, Any] = {} if pay_to is None else {"pay_to": pay_to}
    rules_file, keys_file = params["rules_file"], params["keys_file"]
    settings = Settings(
        host=params["host"],
        port=params["port"],
        speed=params["speed"],
        seed=params["seed"],
        fixtures=params["fixtures"],
        api_keys=frozenset(params["api_keys"]),
        log_requests=params["log_requests"],
        metrics=params["metrics"],
        journal_size=params["journal_size"],
        journal_bytes=params["journal_bytes"],
        admin_token=params["admin_token"],
        daily_limit=params["daily_limit"],
        keys=load_keys_file(keys_file) if keys_file else None,
        rules=tuple(load_rules_file(rules_file)) if rules_file else (),
        rules_file=rules_file,
        payment=PaymentTerms(price_atomic=usdc_to_atomic(params["price_usdc"]), **terms),
    )
    table = load_timing(settings.fixtures)
    app = create_app(
        settings,
        clock=ScaledClock(settings.speed),
        rng=random.Random(settings.seed),
        store=open_store(params["store"]),
        table=table,
        payment_clock=RealClock(),  # the SDK signs payments with the real time
    )
    return app, table


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
