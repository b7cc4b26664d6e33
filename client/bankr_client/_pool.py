"""A connection pool that stays cheap with thousands of concurrent requests.

httpcore's pool matches its queued requests against its connections on every change,
in time proportional to both: with 500 agents in flight that is most of the client's CPU
(500 agents polling a local server spent 19 s of CPU in it). :func:`pooled_transport`
keeps that queue short: a semaphore admits at most ``max_connections`` requests into the
pool at once (the rest wait on the semaphore, at O(1) each), and every connection is kept
alive, so none is reopened per request.

Example::

    transport = pooled_transport(64)
    client = AsyncBankrClient("http://127.0.0.1:8402", api_key="bk_x", transport=transport)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from bankr_client.errors import ConfigError

__all__ = ["DEFAULT_MAX_CONNECTIONS", "GatedTransport", "pooled_transport"]

#: Connections (and requests in flight) a client's default pool allows.
DEFAULT_MAX_CONNECTIONS = 64


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that frees its slot in the gate once closed."""

    def __init__(self, inner: httpx.AsyncByteStream, release: asyncio.Semaphore) -> None:
        self._inner = inner
        self._gate: asyncio.Semaphore | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._gate is not None:
                self._gate.release()
                self._gate = None


class GatedTransport(httpx.AsyncBaseTransport):
    """``inner`` with at most ``limit`` requests in flight; the rest wait their turn.

    Example::

        GatedTransport(httpx.AsyncHTTPTransport(), limit=32)
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"the pool limit must be an int >= 1, got {limit!r}")
        self._inner = inner
        self._gate = asyncio.Semaphore(limit)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._gate.acquire()
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._gate.release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasingStream(response.stream, self._gate)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def pooled_transport(max_connections: int = DEFAULT_MAX_CONNECTIONS) -> GatedTransport:
    """An HTTP transport for many concurrent requests (see the module docstring)."""
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise ConfigError(f"max_connections must be an int, got {max_connections!r}")
    if max_connections < 1:
        raise ConfigError(f"max_connections must be >= 1, got {max_connections}")
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return GatedTransport(httpx.AsyncHTTPTransport(limits=limits), max_connections)
