"""Whether the server is stopping: what a hung or delayed request waits on besides the clock.

Example::

    lifetime = Lifetime()
    await lifetime.wait()   # returns once lifetime.stop() is called, from any thread
"""

from __future__ import annotations

import asyncio

__all__ = ["Lifetime"]


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Lifetime:
    """Whether the server is stopping; waitable from any event loop, settable from any thread.

    Example::

        lifetime = Lifetime()
        await lifetime.wait()   # returns once lifetime.stop() is called
    """

    def __init__(self) -> None:
        self.stopping = False
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def stop(self) -> None:
        """Begin shutdown: every :meth:`wait` returns."""
        self.stopping = True
        for loop, fut in list(self._waiters):
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, fut)

    async def wait(self) -> None:
        if self.stopping:
            return
        loop = asyncio.get_running_loop()
        entry = (loop, loop.create_future())
        self._waiters.add(entry)
        try:
            if not self.stopping:
                await entry[1]
        finally:
            self._waiters.discard(entry)
