"""httpx transports into an in-process app, with timeouts enforced on a :class:`Clock`.

``httpx.ASGITransport`` ignores timeouts: a request the app never answers would
hang the test. These transports put each request under a :class:`ClockTimeout` of the
request's own read timeout, so a hung request on a ``VirtualClock`` raises
``httpx.ReadTimeout`` after exactly that many simulated seconds, and in
milliseconds of wall time.
"""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from mockbankr.clock import Clock, ClockTimeout
from mockbankr.guard import IN_PROCESS
from mockbankr.steering import ConnectionDropped

__all__ = ["AsyncClockTransport", "SyncClockTransport"]

_CLIENT_ADDR = ("127.0.0.1", 50000)


class AsyncClockTransport(httpx.AsyncBaseTransport):
    """An ASGI transport whose read timeouts run on ``clock``.

    Example::

        transport = AsyncClockTransport(app, clock)
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as http:
            await http.get("/_health", timeout=5)
    """

    def __init__(self, app: ASGIApp, clock: Clock, *, client: tuple[str, int] = _CLIENT_ADDR):
        async def in_process(scope: Scope, receive: Receive, send: Send) -> None:
            # No browser is on this path: the guard skips its DNS-rebinding Host check.
            scope["extensions"] = {**scope.get("extensions", {}), IN_PROCESS: {}}
            await app(scope, receive, send)

        self._inner = httpx.ASGITransport(app=in_process, client=client)
        self._clock = clock

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {}).get("read")
        if timeout is None:
            return await self._call(request)
        # asyncio.timeout(), but on the clock, and without a task per request: a timer
        # in the clock's heap (a burst of 20,000 requests leaves no 20,000 tasks behind).
        deadline = ClockTimeout(self._clock, timeout)
        try:
            async with deadline:
                return await self._call(request)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise httpx.ReadTimeout(f"no response within {timeout} s", request=request) from None

    async def _call(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a complete response", request=request
            ) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


#: Wall seconds :meth:`SyncClockTransport.close` waits for what the app left running.
_CLOSE_TIMEOUT = 10.0


class SyncClockTransport(httpx.BaseTransport):
    """The same for sync clients: each request runs to completion on a private loop.

    Use it from synchronous code only (not from inside a running event loop).

    Example::

        with httpx.Client(transport=SyncClockTransport(app, clock), base_url="http://m") as h:
            h.get("/_health")
    """

    def __init__(self, app: ASGIApp, clock: Clock, *, client: tuple[str, int] = _CLIENT_ADDR):
        self._async = AsyncClockTransport(app, clock, client=client)
        self._loop = asyncio.new_event_loop()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            response = await self._async.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(
                response.status_code,
                headers=response.headers,
                content=content,
                extensions=response.extensions,
            )

        return self._loop.run_until_complete(call())

    def close(self) -> None:
        if not self._loop.is_closed():
            # What the app left running on this loop (a shared journal's last write) ends
            # first (a store's operations time out: this is bounded), then what it opened
            # (a shared store's connections) closes.
            loop = self._loop
            while pending := asyncio.all_tasks(loop):
                _, late = loop.run_until_complete(asyncio.wait(pending, timeout=_CLOSE_TIMEOUT))
                for task in late:  # still retrying a lost store: given up
                    task.cancel()
            loop.run_until_complete(loop.shutdown_asyncgens())
            self._loop.close()
