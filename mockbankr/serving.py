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

import uvicorn

from mockbankr.lifetime import Lifetime
from mockbankr.steering import ConnectionDropped

__all__ = ["DEFAULT_GRACEFUL_TIMEOUT", "H11_MAX_HEADER_BYTES", "GracefulServer", "quiet_drops"]

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
