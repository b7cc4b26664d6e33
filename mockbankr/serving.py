"""Serving with a bounded shutdown: hung and delayed requests end when the server stops.

:class:`GracefulServer` is uvicorn's server that tells the app's
:class:`~mockbankr.lifetime.Lifetime` when shutdown begins (a ``hang`` or ``delay``
waits on it besides the clock, so SIGTERM or SIGINT ends them at once), bounds the
whole shutdown (``--graceful-timeout``), and logs no traceback for a ``drop`` fault.

Example::

    server = GracefulServer(uvicorn.Config(app), lifetime=app.state.lifetime,
                            graceful_timeout=5)
    server.run()
"""

from __future__ import annotations

import logging
import math
import socket
from typing import Any

import uvicorn

from mockbankr.errors import ConfigError
from mockbankr.lifetime import Lifetime
from mockbankr.steering import ConnectionDropped

__all__ = [
    "DEFAULT_GRACEFUL_TIMEOUT",
    "GRANIAN_EXTRA_HINT",
    "GracefulServer",
    "H11_MAX_HEADER_BYTES",
    "granian_options",
    "quiet_drops",
    "register_lifetime",
    "run_granian",
    "run_uvicorn",
    "run_uvicorn_workers",
]

#: Seconds a stopping server waits for requests in flight before it cancels them.
DEFAULT_GRACEFUL_TIMEOUT = 5.0

#: uvicorn's ``h11_max_incomplete_event_size``: the request line and headers h11 buffers
#: before it refuses the request (400) unread. Twice the app's own 32 KiB header limit (a
#: 431 from :mod:`mockbankr.guard`), so the app still names the problem below it. With
#: httptools (what ``uvicorn[standard]`` picks) uvicorn has no such bound: see the
#: README's "Limits on what comes in".
H11_MAX_HEADER_BYTES = 64 * 1024


class _NoDropTracebacks(logging.Filter):
    """A ``drop`` fault ends a response on purpose: not an error worth 19 lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, ConnectionDropped):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


_FILTER = _NoDropTracebacks()


def quiet_drops() -> None:
    """Keep uvicorn from logging a traceback for every ``drop`` fault (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


class GracefulServer(uvicorn.Server):
    """uvicorn's server, ending hung and delayed requests when it stops.

    Shutdown tells the app (``lifetime.stop()``) before uvicorn waits for the
    connections, and waits ``graceful_timeout`` seconds at most before cancelling
    what is left.

    Example::

        GracefulServer(uvicorn.Config(app), lifetime=lifetime, graceful_timeout=5).run()
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        lifetime: Lifetime,
        graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
    ) -> None:
        # uvicorn types this as whole seconds; round up, so the bound is never shorter.
        config.timeout_graceful_shutdown = math.ceil(graceful_timeout)
        config.h11_max_incomplete_event_size = H11_MAX_HEADER_BYTES
        super().__init__(config)
        self.lifetime = lifetime
        quiet_drops()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.lifetime.stop()
        await super().shutdown(sockets)


def run_uvicorn(app: Any, *, host: str, port: int, graceful_timeout: float) -> None:
    """Serve ``app`` in this process with uvicorn, until SIGINT or SIGTERM."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    GracefulServer(config, lifetime=app.state.lifetime, graceful_timeout=graceful_timeout).run()


def run_uvicorn_workers(
    factory: str, *, host: str, port: int, workers: int, graceful_timeout: float
) -> None:
    """``workers`` uvicorn processes on one port, each serving the app ``factory`` (an
    import string) builds; uvicorn's supervisor restarts a worker that dies.

    Each worker ends its hangs and delays on SIGTERM or SIGINT (:func:`register_lifetime`)
    and gives the rest ``graceful_timeout`` seconds, as one process does.
    """
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=math.ceil(graceful_timeout),
        h11_max_incomplete_event_size=H11_MAX_HEADER_BYTES,
    )
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()


def run_granian(
    factory: str, *, host: str, port: int, workers: int, graceful_timeout: float
) -> None:
    """``workers`` granian processes (Rust I/O, the ``mockbankr[granian]`` extra) on one
    port, each serving the app ``factory`` (an import string) builds, over ASGI.

    granian has no graceful-shutdown hook for requests in flight: on SIGTERM or SIGINT its
    workers stop, the app's lifespan ends hangs and delays, and a worker that has not
    stopped after ``graceful_timeout`` seconds is killed.

    Raises :class:`~mockbankr.errors.ConfigError` without the extra.
    """
    try:
        from granian.server import Server
    except ImportError as exc:
        raise ConfigError(GRANIAN_EXTRA_HINT) from exc

    Server(
        factory,
        address=host,
        port=port,
        workers=workers,
        factory=True,
        workers_kill_timeout=max(1, math.ceil(graceful_timeout)),
        **granian_options(),
    ).serve()


def granian_options() -> dict[str, Any]:
    """How mockbankr runs granian (``--server granian``, and its benchmark): ASGI, HTTP/1,
    uvloop, one single-threaded Rust runtime per worker, no access log. (granian's tasks
    in Rust are experimental: not used.)"""
    from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes
    from granian.log import LogLevels

    return {
        "interface": Interfaces.ASGI,
        "http": HTTPModes.http1,
        "loop": Loops.uvloop,
        "runtime_mode": RuntimeModes.st,
        "log_access": False,
        "log_level": LogLevels.warning,
    }


#: What ``--server granian`` says when the ``mockbankr[granian]`` extra is missing.
GRANIAN_EXTRA_HINT = "--server granian needs the granian extra: pip install 'mockbankr[granian]'"


def register_lifetime(lifetime: Lifetime) -> None:
    """In a worker process: end ``lifetime`` (hangs, delays) on SIGTERM or SIGINT, then let
    the server's own handler stop it as usual. Call it from the server's main thread while
    the server's signal handlers are in place (an app factory runs there)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            lifetime.stop()
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)

        signal.signal(sig, handler)
