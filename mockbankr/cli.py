"""The ``mockbankr`` command line: the only place that reads flags and environment.

Every option of ``mockbankr serve`` also reads a ``MOCKBANKR_*`` environment
variable (``--port`` <- ``MOCKBANKR_PORT``, ``--api-key`` <- ``MOCKBANKR_API_KEY``,
space-separated for several keys).
"""

from __future__ import annotations

import logging
import random
import socket
import sys
from pathlib import Path

import click

from mockbankr.app import create_app
from mockbankr.clock import RealClock, ScaledClock
from mockbankr.errors import ConfigError
from mockbankr.settings import Settings
from mockbankr.store import MemoryStore
from mockbankr.timing import load_timing

__all__ = ["main"]


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
@click.option(
    "--host",
    envvar="MOCKBANKR_HOST",
    default="127.0.0.1",
    show_default=True,
    show_envvar=True,
    help="Interface to listen on. Keep loopback unless you mean to share it.",
)
@click.option(
    "--port",
    envvar="MOCKBANKR_PORT",
    type=click.IntRange(0, 65535),
    default=8402,
    show_default=True,
    show_envvar=True,
    help="TCP port.",
)
@click.option(
    "--speed",
    envvar="MOCKBANKR_SPEED",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    show_envvar=True,
    help="Simulated seconds per wall second: 20 makes a 10 s swap take 0.5 s.",
)
@click.option(
    "--seed",
    envvar="MOCKBANKR_SEED",
    type=int,
    default=None,
    show_envvar=True,
    help="Seed every random choice: the same prompts in the same order "
    "give the same ids, schedules and outcomes. Default: random.",
)
@click.option(
    "--fixtures",
    envvar="MOCKBANKR_FIXTURES",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    show_envvar=True,
    help="Folder with your own timing.toml (default: the built-in table).",
)
@click.option(
    "--api-key",
    "api_keys",
    envvar="MOCKBANKR_API_KEY",
    multiple=True,
    show_envvar=True,
    help="Accept only this X-API-Key (repeatable). Default: any non-empty key.",
)
@click.option(
    "--log-requests/--no-log-requests",
    envvar="MOCKBANKR_LOG_REQUESTS",
    default=False,
    show_envvar=True,
    help="Log one structured line per request.",
)
def serve(
    host: str,
    port: int,
    speed: float,
    seed: int | None,
    fixtures: Path | None,
    api_keys: tuple[str, ...],
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
        )
        table = load_timing(settings.fixtures)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    _check_port_free(host, port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    clock = RealClock() if speed == 1.0 else ScaledClock(speed)
    rng = random.Random(seed)
    app = create_app(settings, clock=clock, rng=rng, store=MemoryStore(), table=table)
    click.echo(
        f"mockbankr listening on http://{host}:{port} (speed {speed:g}x, "
        f"seed {'random' if seed is None else seed}, timing table {table.path})",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
