"""The daily message limit, as documented: a window of 24 simulated hours per key.

The window opens with a key's first message and closes 24 hours later (not at
midnight); the next message after that opens a new one. Only prompts count:
polls and cancels are free (the sources do not say; this is what lets the
official clients poll a job to its end after the last allowed prompt).
"""

from __future__ import annotations

from mockbankr.errors import DailyLimitExceeded

__all__ = ["DAY", "DailyLimit"]

DAY = 86_400.0


class DailyLimit:
    """Counts prompts per owner and refuses the one over the limit.

    Example::

        limit = DailyLimit(100)
        limit.take("key:bk_1", now)   # raises DailyLimitExceeded when over
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._windows: dict[str, tuple[float, int]] = {}

    def take(self, owner: str, now: float) -> None:
        """Count one message, or raise :class:`~mockbankr.errors.DailyLimitExceeded`
        (the documented 429 on the wire; nothing is counted then)."""
        start, used = self._windows.get(owner, (now, 0))
        if now >= start + DAY:
            start, used = now, 0
        if used >= self.limit:
            raise DailyLimitExceeded(owner, limit=self.limit, used=used, reset_at=start + DAY)
        self._windows[owner] = (start, used + 1)

    def clear(self) -> None:
        self._windows.clear()
