"""The daily prompt quota, as documented: per account, over a rolling 24 simulated hours.

The window opens with an account's first prompt and closes 24 hours later (not at
midnight); the next prompt after that opens a new one (docs/wire.md 1.7, 1.8). All keys of
an account share its window; a key's custom limit replaces the account's limit
when that key prompts. Only prompts count: polls and cancels are free (the sources
do not say; this lets the official clients poll a job to its end after the last
allowed prompt).
"""

from __future__ import annotations

import msgspec

from mockbankr.errors import DailyLimitExceeded

__all__ = ["DAY", "DailyLimit"]

DAY = 86_400.0


class DailyLimit:
    """Counts prompts per account and refuses the one over the limit.

    Example::

        quota = DailyLimit()
        quota.take("acme", limit=100, now=clock.now())  # DailyLimitExceeded when over
    """

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        #: Counts the changes made here (a prompt counted, a clear), not :meth:`load`.
        self.revision = 0

    def take(self, account: str, *, limit: int, now: float, upgrade: bool = True) -> None:
        """Count one prompt, or raise :class:`~mockbankr.errors.DailyLimitExceeded` (the
        documented 429 on the wire; nothing is counted then).

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
        self.revision += 1

    def used(self, account: str, now: float) -> int:
        """Prompts the account has used in its current window."""
        start, used = self._windows.get(account, (now, 0))
        return 0 if now >= start + DAY else used

    def clear(self) -> None:
        self._windows.clear()
        self.revision += 1

    def export(self) -> bytes:
        """Every account's window, for :meth:`load` in another server."""
        return msgspec.msgpack.encode(self._windows)

    def load(self, data: bytes) -> None:
        """Take the windows of an :meth:`export`."""
        self._windows = msgspec.msgpack.decode(data, type=dict[str, tuple[float, int]])
