"""The daily prompt quota, as documented: per account, over a rolling 24 simulated hours.

The window opens with an account's first prompt and closes 24 hours later (not at
midnight); the next prompt after that opens a new one (docs/wire.md 1.7, 1.8). All keys of
an account share its window; a key's custom limit replaces the account's limit
when that key prompts. Only prompts count: polls and cancels are free (the sources
do not say; this lets the official clients poll a job to its end after the last
allowed prompt).

With a shared store, the windows live in the store (a :class:`QuotaBackend`, the Redis
store's): each prompt's check-and-count is one atomic step there, so of any number of
prompts on any number of servers exactly ``limit`` are counted in a window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from mockbankr.errors import DailyLimitExceeded

__all__ = ["DAY", "DailyLimit", "QuotaBackend"]

DAY = 86_400.0


class QuotaBackend(Protocol):
    """Where the windows live when several servers share them (the Redis store)."""

    async def take_quota(
        self, account: str, *, limit: int, now: float, day: float
    ) -> tuple[bool, int, float]:
        """In one atomic step: open a new window if ``account`` has none open at ``now``
        (a window lasts ``day``), and count one prompt if fewer than ``limit`` were.
        ``(counted, used, window start)``; ``used`` includes this prompt when counted."""
        ...

    async def quota_used(self, accounts: Sequence[str], now: float, day: float) -> list[int]:
        """The prompts each account has used in its window open at ``now`` (one round trip)."""
        ...

    async def clear_quota(self) -> None:
        """Forget every window."""
        ...


class DailyLimit:
    """Counts prompts per account and refuses the one over the limit.

    In memory by default; with :attr:`shared` set, in the store (:meth:`acquire`,
    :meth:`usage` and :meth:`reset` then go there).

    Example::

        quota = DailyLimit()
        await quota.acquire("acme", limit=100, now=clock.now())  # DailyLimitExceeded when over
    """

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        #: The store that holds the windows of every server (``None``: this process only).
        self.shared: QuotaBackend | None = None

    async def acquire(self, account: str, *, limit: int, now: float, upgrade: bool = True) -> None:
        """:meth:`take`, in the shared store when there is one (one atomic script)."""
        shared = self.shared
        if shared is None:
            self.take(account, limit=limit, now=now, upgrade=upgrade)
            return
        counted, used, start = await shared.take_quota(account, limit=limit, now=now, day=DAY)
        if not counted:
            raise DailyLimitExceeded(
                account, limit=limit, used=used, reset_at=start + DAY, upgrade=upgrade
            )

    def take(self, account: str, *, limit: int, now: float, upgrade: bool = True) -> None:
        """Count one prompt in this process, or raise
        :class:`~mockbankr.errors.DailyLimitExceeded` (the documented 429 on the wire;
        nothing is counted then).

        ``upgrade``: whether Bankr Club would raise the limit (it is in the message).
        """
        start, used = self._windows.get(account, (now, 0))
        if now >= start + DAY:
            start, used = now, 0
        if used >= limit:
            raise DailyLimitExceeded(
                account, limit=limit, used=used, reset_at=start + DAY, upgrade=upgrade
            )
        self._windows[account] = (start, used + 1)

    def used(self, account: str, now: float) -> int:
        """Prompts the account has used in its current window (this process's count)."""
        start, used = self._windows.get(account, (now, 0))
        return 0 if now >= start + DAY else used

    async def usage(self, accounts: Iterable[str], now: float) -> dict[str, int]:
        """Prompts each account has used in its current window, wherever they are counted."""
        wanted = list(accounts)
        if self.shared is None:
            return {account: self.used(account, now) for account in wanted}
        if not wanted:
            return {}
        return dict(zip(wanted, await self.shared.quota_used(wanted, now, DAY), strict=True))

    def clear(self) -> None:
        self._windows.clear()

    async def reset(self) -> None:
        """Forget every window (in the shared store too)."""
        self.clear()
        if self.shared is not None:
            await self.shared.clear_quota()
