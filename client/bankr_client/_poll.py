"""The polling state machine: given what just happened and the time, what to do next.

:class:`Poller` never sleeps and never sends; the shared core asks it before each status
request (``before_request``), after each status (``after_status``) and after each failure
(``after_error``), and it answers with a request timeout, a delay, "done", or an exception.

Budget rules, in the order they apply:

* a terminal status (completed, failed **or cancelled**) ends polling at once;
* a non-retryable error (400, 401, 402, 403, 404, malformed body) is raised at once;
* when the deadline has passed, :class:`PollTimeoutError`; when ``max_attempts`` status
  requests (retries included) were sent, :class:`PollAttemptsExceededError` -- both raised
  ``from`` the last transient error, if the last request failed;
* a retryable error the retry policy gives up on is raised as it is.

A sleep is never longer than the time left, and each request's timeout is capped by it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bankr_client.errors import (
    BankrError,
    PollAttemptsExceededError,
    PollTimeoutError,
    TransportError,
)
from bankr_client.models import JobStatus
from bankr_client.retry import RetryPolicy

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_MAX_ATTEMPTS", "DEFAULT_TIMEOUT", "Deadline", "Poller"]

# The official SDK's polling defaults (``@bankr/sdk`` client.js L115-117), written once: every
# waiting method of both clients takes them as its keyword defaults.
#: Seconds between status requests.
DEFAULT_INTERVAL = 2.0
#: Status requests at most (retries included).
DEFAULT_MAX_ATTEMPTS = 150
#: Seconds from the first status request to the deadline.
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class Deadline:
    """An instant on the client's clock, and the budget (``timeout`` s) it came from."""

    at: float
    timeout: float

    def remaining(self, now: float) -> float:
        return self.at - now

    def expired(
        self,
        *,
        job_id: str | None,
        last_status: JobStatus | None,
    ) -> PollTimeoutError:
        what = f"job {job_id}" if job_id else "the prompt"
        seen = f" (last status: {last_status.status.value})" if last_status else ""
        return PollTimeoutError(
            f"gave up on {what} after the {self.timeout:g}s timeout{seen}",
            job_id=job_id,
            last_status=last_status,
            timeout=self.timeout,
        )


class Poller:
    """The decisions of one ``poll_job`` run (see the module docstring)."""

    def __init__(
        self,
        job_id: str,
        *,
        interval: float,
        max_attempts: int,
        deadline: Deadline,
        policy: RetryPolicy,
        rng: random.Random,
    ) -> None:
        self.job_id = job_id
        self.interval = interval
        self.max_attempts = max_attempts
        self.deadline = deadline
        self.policy = policy
        self.rng = rng
        #: Status requests sent so far, retries included.
        self.attempts = 0
        #: Consecutive failed requests since the last status.
        self.failures = 0
        self.last_status: JobStatus | None = None
        self.last_error: BankrError | None = None

    def _attempts_error(self) -> PollAttemptsExceededError:
        seen = f" (last status: {self.last_status.status.value})" if self.last_status else ""
        return PollAttemptsExceededError(
            f"job {self.job_id} not finished after {self.attempts} status requests{seen}",
            job_id=self.job_id,
            last_status=self.last_status,
            attempts=self.attempts,
        )

    def _timeout_error(self) -> PollTimeoutError:
        return self.deadline.expired(job_id=self.job_id, last_status=self.last_status)

    def before_request(self, now: float, request_timeout: float) -> float:
        """The timeout for the next status request, or raise if the budget is spent."""
        remaining = self.deadline.remaining(now)
        if remaining <= 0:
            raise self._timeout_error() from self.last_error
        if self.attempts >= self.max_attempts:
            raise self._attempts_error() from self.last_error
        self.attempts += 1
        return min(request_timeout, remaining)

    def after_status(self, status: JobStatus, now: float) -> float | None:
        """``None`` when ``status`` is terminal, else the seconds to sleep before the next."""
        self.last_status = status
        self.last_error = None
        self.failures = 0
        if status.is_terminal:
            return None
        if self.attempts >= self.max_attempts:
            raise self._attempts_error()
        remaining = self.deadline.remaining(now)
        if remaining <= 0:
            raise self._timeout_error()
        return min(self.interval, remaining)

    def after_error(self, error: BankrError, now: float) -> float:
        """The seconds to wait before retrying after ``error``, or raise."""
        sent = error.sent if isinstance(error, TransportError) else True
        if not self.policy.retryable(error, is_read=True, sent=sent):
            raise error
        remaining = self.deadline.remaining(now)
        if remaining <= 0:
            raise self._timeout_error() from error
        if self.attempts >= self.max_attempts:
            raise self._attempts_error() from error
        delay = self.policy.decide(
            self.failures, error, is_read=True, sent=sent, remaining=remaining, rng=self.rng
        )
        if delay is None:
            raise error
        self.failures += 1
        self.last_error = error
        return delay
