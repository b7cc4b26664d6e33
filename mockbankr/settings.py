"""Server settings: one frozen, self-validating value.

Environment variables and flags are read only at the edge (:mod:`mockbankr.cli`);
everything inside receives a :class:`Settings`.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from mockbankr.errors import ConfigError

__all__ = ["Settings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """How one mockbankr server behaves.

    Example::

        Settings(port=9000, speed=20, seed=7, api_keys=frozenset({"bk_test"}))
    """

    host: str = "127.0.0.1"
    port: int = 8402
    #: Simulated seconds per wall second (only for real servers; tests use a VirtualClock).
    speed: float = 1.0
    #: Seed of every random choice; ``None`` draws one at start.
    seed: int | None = None
    #: A folder with ``timing.toml`` (and later other fixtures); ``None`` = built-in.
    fixtures: Path | None = None
    #: Accepted API keys; empty accepts any non-empty key.
    api_keys: frozenset[str] = frozenset()
    #: Log one structured line per request to the ``mockbankr`` logger.
    log_requests: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.port, int) and 0 <= self.port <= 65535):
            raise ConfigError(f"port must be within 0..65535, got {self.port!r}")
        if not (math.isfinite(self.speed) and self.speed > 0):
            raise ConfigError(f"speed must be a positive number, got {self.speed!r}")
        if not self.host:
            raise ConfigError("host must not be empty")
        for key in self.api_keys:
            if not key or key != key.strip():
                raise ConfigError(f"API keys must be non-empty without spaces around, got {key!r}")
