"""The clock protocol: the client's only source of time and of waiting.

Every wait and every deadline of the client goes through a :class:`Clock`, so a test can run
the whole client on virtual time. The protocol is structural: any object with these three
methods fits, among them the simulator's ``mockbankr.clock.VirtualClock`` (whose async ``sleep``
jumps time forward as soon as every task is blocked) -- the client never imports it.

For polling only differences of ``now()`` matter. An x402 payment also needs unix time for
its validity window: see :class:`~bankr_client.auth.X402Auth` for how that is chosen.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What the client needs from a clock.

    Example::

        class FrozenClock:
            def __init__(self) -> None: self.t = 0.0
            def now(self) -> float: return self.t
            async def sleep(self, seconds: float) -> None: self.t += seconds
            def sleep_sync(self, seconds: float) -> None: self.t += seconds

        client = BankrClient(api_key="bk_test", clock=FrozenClock())
    """

    def now(self) -> float:
        """Seconds, as a float. Only differences matter (unless used for x402, see above)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` without blocking the event loop (async client)."""
        ...

    def sleep_sync(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` (sync client)."""
        ...


class SystemClock:
    """The default clock: ``time.monotonic``, ``asyncio.sleep`` and ``time.sleep``.

    Its ``now()`` is monotonic, not unix time, so it is never used for x402 validity windows.

    Example::

        clock = SystemClock()
        t0 = clock.now(); clock.sleep_sync(0.01); assert clock.now() > t0
    """

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def sleep_sync(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))
