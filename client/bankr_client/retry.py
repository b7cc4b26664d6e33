"""When to retry a failed request, and how long to wait first: one pure function.

:meth:`RetryPolicy.decide` knows nothing of sockets or sleeping; both clients ask it after every
failed request and do what it says. The rules:

* **Reads** (job status, cancel) are idempotent and are retried on 429, any 5xx, and any
  transport failure (connect errors, timeouts, dropped connections).
* **Prompts** (``POST /agent/prompt``, ``POST /v2/prompt``) create a job that costs money, so
  they are retried only when the server provably did not accept them: the connection was
  never made (:class:`~bankr_client.errors.RequestNotSentError`), a 429, or a 503. Never after
  a timeout once sent, never on 500/502/504: a duplicate job is a second charge.
* Nothing else is retried (400, 401, 402, 403, 404, malformed bodies).

Delays: the ``n``-th retry (``attempt = n - 1``, counting from 0) waits
``cap = min(backoff_base * 2 ** attempt, backoff_max)``. With ``jitter`` this is *equal jitter*:
the delay is drawn uniformly from ``[cap / 2, cap]`` with the injected ``random.Random``;
without it the delay is exactly ``cap``. A server's ``Retry-After`` replaces the computed delay
(no jitter), still capped by ``backoff_max``. Every delay is finally capped by ``remaining``, the
time left before the caller's deadline, and no retry is offered once that is used up.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from bankr_client.errors import (
    BankrError,
    ConfigError,
    RateLimitError,
    ServerError,
    TransportError,
)

__all__ = ["RetryPolicy"]

#: Statuses at which a prompt provably was not accepted: resending it cannot create a 2nd job.
_PROMPT_RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a failed request.

    ``max_retries`` is the number of retries after the first try (so at most
    ``max_retries + 1`` requests); the backoff is described in the module docstring.
    Nonsense raises :class:`~bankr_client.errors.ConfigError` (a ``ValueError``).

    Example::

        policy = RetryPolicy(max_retries=3, backoff_base=1.0, backoff_max=30.0, jitter=False)
        policy.decide(0, RateLimitError(429, None, None), is_read=True, sent=True,
                      remaining=None)   # -> 1.0
        client = BankrClient(api_key="bk_...", retry=policy)
    """

    max_retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ConfigError(f"max_retries must be an int, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("backoff_base", "backoff_max"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.backoff_max < self.backoff_base:
            raise ConfigError(
                f"backoff_max ({self.backoff_max}) must be >= backoff_base ({self.backoff_base})"
            )
        if not isinstance(self.jitter, bool):
            raise ConfigError(f"jitter must be a bool, got {self.jitter!r}")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The backoff before retry number ``attempt + 1``, jittered as documented.

        Example::

            RetryPolicy(jitter=False).backoff(2)  # 4.0
        """
        if attempt < 0:
            raise ConfigError(f"attempt must be >= 0, got {attempt}")
        # 2.0 ** 1024 overflows; far before that the cap has long been reached.
        cap = min(self.backoff_base * 2.0 ** min(attempt, 1000), self.backoff_max)
        if not self.jitter:
            return cap
        rng = rng if rng is not None else random.Random()
        return cap / 2 + rng.uniform(0.0, cap / 2)

    def retryable(self, error: BankrError, *, is_read: bool, sent: bool) -> bool:
        """Whether ``error`` may be retried at all, ignoring the attempt count.

        Example::

            RetryPolicy().retryable(ServerError(500, None, None), is_read=False, sent=True)
            # False: the prompt may have created a job
        """
        if isinstance(error, RateLimitError) and error.reset_at and error.retry_after is None:
            # The daily message quota (a body with resetAt, no Retry-After): it resets
            # hours from now, so no backoff can help and every retry is wasted.
            return False
        if is_read:
            return isinstance(error, RateLimitError | ServerError | TransportError)
        if not sent:
            return True
        return isinstance(error, RateLimitError | ServerError) and (
            error.status_code in _PROMPT_RETRY_STATUSES
        )

    def decide(
        self,
        attempt: int,
        error: BankrError,
        *,
        is_read: bool,
        sent: bool,
        remaining: float | None,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before retrying, or ``None`` to give up and raise ``error``.

        ``attempt`` counts the retries already made for this request (0 after the first
        failure), ``is_read`` says whether the request is idempotent, ``sent`` whether it may
        have reached the server, ``remaining`` the seconds left before the caller's deadline
        (``None``: no deadline), and ``rng`` the source of jitter.

        Example::

            policy = RetryPolicy(jitter=False)
            err = RateLimitError(429, None, None, retry_after=7.0)
            policy.decide(0, err, is_read=True, sent=True, remaining=5.0)   # 5.0 (deadline)
            policy.decide(3, err, is_read=True, sent=True, remaining=None)  # None (spent)
        """
        if attempt >= self.max_retries:
            return None
        if not self.retryable(error, is_read=is_read, sent=sent):
            return None
        if remaining is not None and remaining <= 0:
            return None
        retry_after = error.retry_after if isinstance(error, RateLimitError | ServerError) else None
        delay = retry_after if retry_after is not None else self.backoff(attempt, rng)
        delay = min(max(0.0, delay), self.backoff_max)
        if remaining is not None:
            delay = min(delay, remaining)
        return delay
