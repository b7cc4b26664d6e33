"""Server settings: one frozen, self-validating value.

Environment variables and flags are read only at the edge (:mod:`mockbankr.cli`);
everything inside receives a :class:`Settings`.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from mockbankr.accounts import KeyConfig
from mockbankr.errors import ConfigError
from mockbankr.journal import DEFAULT_JOURNAL_BYTES
from mockbankr.money import PaymentTerms
from mockbankr.rules import Rule
from mockbankr.validate import JOURNAL_BYTES

__all__ = ["Settings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """How one mockbankr server behaves.

    Example::

        Settings(port=9000, speed=20, seed=7, api_keys=frozenset({"bk_test"}))
    """

    host: str = "127.0.0.1"
    port: int = 8402
    #: Simulated seconds per wall second (only for real servers; tests use a VirtualClock);
    #: 0 stops time until the control plane moves it.
    speed: float = 1.0
    #: Seed of every random choice; ``None`` draws one at start.
    seed: int | None = None
    #: A folder with ``timing.toml`` (and later other fixtures); ``None`` = built-in.
    fixtures: Path | None = None
    #: Accepted API keys; empty accepts any non-empty key.
    api_keys: frozenset[str] = frozenset()
    #: Log one structured line per request to the ``mockbankr`` logger.
    log_requests: bool = False
    #: How many requests the journal keeps (a ring buffer).
    journal_size: int = 10_000
    #: About how many bytes the journal keeps (estimated from its entries' text lengths);
    #: the oldest entries go first when over.
    journal_bytes: int = DEFAULT_JOURNAL_BYTES
    #: Required as ``Authorization: Bearer`` on ``/__mock/*``; ``None`` = loopback only.
    admin_token: str | None = None
    #: Prompts per key per rolling 24 simulated hours; ``None`` = unlimited.
    #: Without ``keys`` only: each key is then an account of its own.
    daily_limit: int | None = None
    #: Accounts and keys (``--keys FILE``); ``None``: any key, or only ``api_keys``.
    keys: KeyConfig | None = None
    #: Fault rules the server starts with (and returns to on reset).
    rules: tuple[Rule, ...] = ()
    #: The file ``rules`` were read from, named when one of them is refused.
    rules_file: Path | None = None
    #: What ``/v2/prompt`` charges and to whom (never settled).
    payment: PaymentTerms = dataclasses.field(default_factory=PaymentTerms)
    #: Count requests and rule firings for ``/__mock/metrics`` (``--no-metrics``: off,
    #: and ``/__mock/metrics`` answers 404).
    metrics: bool = True

    def key_config(self) -> KeyConfig:
        """The keys file's configuration, or today's default built from the flags."""
        if self.keys is not None:
            return self.keys
        return KeyConfig.default(api_keys=self.api_keys, daily_limit=self.daily_limit)

    def __post_init__(self) -> None:
        if not (isinstance(self.port, int) and 0 <= self.port <= 65535):
            raise ConfigError(f"port must be within 0..65535, got {self.port!r}")
        if not (math.isfinite(self.speed) and self.speed >= 0):
            raise ConfigError(f"speed must be a finite number >= 0, got {self.speed!r}")
        if not self.host:
            raise ConfigError("host must not be empty")
        if not (isinstance(self.journal_size, int) and self.journal_size >= 1):
            raise ConfigError(f"journal size must be >= 1, got {self.journal_size!r}")
        if not (isinstance(self.journal_bytes, int) and JOURNAL_BYTES.contains(self.journal_bytes)):
            raise ConfigError(
                f"journal bytes must be {JOURNAL_BYTES.describe()}, got {self.journal_bytes!r}"
            )
        if self.daily_limit is not None and self.daily_limit < 1:
            raise ConfigError(f"daily limit must be >= 1, got {self.daily_limit!r}")
        if self.admin_token is not None and len(self.admin_token) < 8:
            raise ConfigError("the admin token must be at least 8 characters")
        if self.keys is not None and (self.api_keys or self.daily_limit is not None):
            raise ConfigError(
                "a keys file declares the keys and their limits: drop --api-key and --daily-limit"
            )
        for key in self.api_keys:
            if not key or key != key.strip():
                raise ConfigError(f"API keys must be non-empty without spaces around, got {key!r}")
