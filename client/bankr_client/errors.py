"""The client's exception tree.

::

    BankrError
    ├── ConfigError (ValueError)            bad arguments or settings, raised before any I/O
    ├── APIError                            the server answered with a non-2xx status
    │   ├── BadRequestError                 400
    │   ├── AuthenticationError             401
    │   ├── PaymentRequiredError            402 (x402 challenge in ``accepts``)
    │   ├── PermissionDeniedError           403
    │   ├── NotFoundError                   404
    │   ├── RateLimitError                  429 (``retry_after``, ``reset_at``, ``limit``, ``used``)
    │   └── ServerError                     5xx
    ├── ProtocolError                       a 2xx whose body is not what the API documents
    ├── TransportError                      no HTTP answer at all (wraps an httpx error)
    │   ├── RequestNotSentError             provably never reached the server (connect failed)
    │   └── RequestTimeoutError             sent, but no answer in time (may have been accepted)
    ├── PollError                           polling gave up (``job_id``, ``last_status``)
    │   ├── PollTimeoutError                the ``timeout`` deadline passed
    │   └── PollAttemptsExceededError       ``max_attempts`` status requests were spent
    └── JobError                            the job ended badly (``status``); raise_on_failure
        ├── JobFailedError                  final status ``failed``
        └── JobCancelledError               final status ``cancelled``

API answers (:class:`APIError`, :class:`ProtocolError`) stay apart from transport failures
(:class:`TransportError`) and from the outcome of a job (:class:`JobError`), so a caller can tell
"the server said no" from "the network broke" from "the agent failed". An HTTP error body is
never parsed as a job status.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bankr_client.models import JobStatus

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "BankrError",
    "ConfigError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PollAttemptsExceededError",
    "PollError",
    "PollTimeoutError",
    "ProtocolError",
    "RateLimitError",
    "RequestNotSentError",
    "RequestTimeoutError",
    "ServerError",
    "TransportError",
]


class BankrError(Exception):
    """Root of every exception the client raises on purpose.

    Example::

        try:
            client.prompt_and_wait("what is the price of ETH?")
        except BankrError as exc:
            log.warning("bankr call failed: %s", exc)
    """


class ConfigError(BankrError, ValueError):
    """An argument or setting is invalid; raised before any request is sent.

    Example::

        RetryPolicy(max_retries=-1)  # raises ConfigError
    """


class APIError(BankrError):
    """The server answered with a non-2xx status.

    ``error`` and ``message`` come from the documented ``{"error", "message"}`` body (``None``
    when the body lacks them or is not JSON); ``body`` is the decoded JSON object, or ``{}``.

    Example::

        try:
            client.get_job_status("job_missing")
        except APIError as exc:
            assert exc.status_code == 404 and exc.error == "Job not found"
    """

    def __init__(
        self,
        status_code: int,
        error: str | None,
        message: str | None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        self.status_code = status_code
        self.error = error
        self.message = message
        self.body: dict[str, Any] = dict(body or {})
        text = ": ".join(part for part in (error, message) if part)
        super().__init__(f"HTTP {status_code}" + (f" {text}" if text else ""))


class BadRequestError(APIError):
    """400: the request was refused as invalid (also "Job already completed" on cancel).

    Example::

        except BadRequestError as exc: print(exc.error)  # "Prompt too long"
    """


class AuthenticationError(APIError):
    """401: the API key is missing or invalid.

    Example::

        except AuthenticationError: ask_for_a_new_key()
    """


class PaymentRequiredError(APIError):
    """402: payment is required, or a payment was refused, or it would exceed the cap.

    ``accepts`` lists the x402 payment requirements of the challenge (may be empty) and
    ``x402_version`` its version. The client never pays twice for one prompt.

    Example::

        except PaymentRequiredError as exc:
            print(exc.accepts[0]["maxAmountRequired"])
    """

    def __init__(
        self,
        status_code: int,
        error: str | None,
        message: str | None,
        body: Mapping[str, Any] | None = None,
        *,
        accepts: Sequence[Mapping[str, Any]] = (),
        x402_version: int | None = None,
    ) -> None:
        super().__init__(status_code, error, message, body)
        self.accepts: list[dict[str, Any]] = [dict(item) for item in accepts]
        self.x402_version = x402_version


class PermissionDeniedError(APIError):
    """403: the key may not do this (agent access off, IP not allowed, read-only key).

    Example::

        except PermissionDeniedError as exc: print(exc.message)
    """


class NotFoundError(APIError):
    """404: no such job, or it belongs to someone else.

    Example::

        except NotFoundError: forget(job_id)
    """


class RateLimitError(APIError):
    """429: too many requests, or the daily message limit is used up.

    ``retry_after`` is the ``Retry-After`` header in seconds (``None`` if absent or unreadable);
    ``reset_at`` the body's ``resetAt`` (unix ms) as an aware UTC datetime; ``limit`` and
    ``used`` the body's counters.

    Example::

        except RateLimitError as exc:
            print(exc.retry_after, exc.reset_at, exc.used, "/", exc.limit)
    """

    def __init__(
        self,
        status_code: int,
        error: str | None,
        message: str | None,
        body: Mapping[str, Any] | None = None,
        *,
        retry_after: float | None = None,
        reset_at: _dt.datetime | None = None,
        limit: int | None = None,
        used: int | None = None,
    ) -> None:
        super().__init__(status_code, error, message, body)
        self.retry_after = retry_after
        self.reset_at = reset_at
        self.limit = limit
        self.used = used


class ServerError(APIError):
    """5xx: the server failed. Reads are retried; a prompt only on 503.

    ``retry_after`` is the ``Retry-After`` header in seconds, if the server sent one.

    Example::

        except ServerError as exc: assert 500 <= exc.status_code < 600
    """

    def __init__(
        self,
        status_code: int,
        error: str | None,
        message: str | None,
        body: Mapping[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status_code, error, message, body)
        self.retry_after = retry_after


class ProtocolError(BankrError):
    """A 2xx answer whose body is not JSON, or not the documented shape.

    ``status_code`` is the HTTP status and ``content`` the start of the body.

    Example::

        except ProtocolError as exc: print(exc.status_code, exc.content[:80])
    """

    def __init__(self, message: str, *, status_code: int | None = None, content: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.content = content


class TransportError(BankrError):
    """No HTTP answer arrived. ``__cause__`` is the original httpx exception.

    ``sent`` is ``False`` only when the request provably never reached the server (the
    connection was never established), which is the one case where resending a prompt
    cannot create a second, paid job.

    Example::

        except TransportError as exc:
            print(type(exc.__cause__).__name__, exc.sent)
    """

    sent: bool = True

    def __init__(self, message: str) -> None:
        super().__init__(message)


class RequestNotSentError(TransportError):
    """The connection could not be established, so the server never saw the request.

    Example::

        except RequestNotSentError: pass  # safe to resend, even a prompt
    """

    sent = False


class RequestTimeoutError(TransportError):
    """The request was sent but no complete answer came within its timeout.

    Example::

        except RequestTimeoutError: pass  # a prompt may have been accepted: do not resend
    """


class PollError(BankrError):
    """Polling stopped before the job reached a terminal status.

    ``job_id`` is the job being polled (``None`` if the prompt itself never got one) and
    ``last_status`` the last status seen (``None`` if no status request succeeded).

    Example::

        except PollError as exc:
            client.cancel_job(exc.job_id)
    """

    def __init__(self, message: str, *, job_id: str | None, last_status: JobStatus | None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.last_status = last_status


class PollTimeoutError(PollError):
    """The poll's ``timeout`` deadline passed. ``timeout`` is that budget in seconds.

    Example::

        except PollTimeoutError as exc: print(f"gave up after {exc.timeout}s")
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None,
        last_status: JobStatus | None,
        timeout: float,
    ) -> None:
        super().__init__(message, job_id=job_id, last_status=last_status)
        self.timeout = timeout


class PollAttemptsExceededError(PollError):
    """``max_attempts`` status requests were sent without seeing a terminal status.

    Example::

        except PollAttemptsExceededError as exc: print(exc.attempts)
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None,
        last_status: JobStatus | None,
        attempts: int,
    ) -> None:
        super().__init__(message, job_id=job_id, last_status=last_status)
        self.attempts = attempts


class JobError(BankrError):
    """The job reached a terminal status other than ``completed``. ``status`` is that status.

    Example::

        except JobError as exc: print(exc.status.status, exc.status.error)
    """

    def __init__(self, status: JobStatus) -> None:
        self.status = status
        self.job_id = status.job_id
        detail = f": {status.error}" if status.error else ""
        super().__init__(f"job {status.job_id} {status.status.value}{detail}")


class JobFailedError(JobError):
    """The job ended ``failed``; ``status.error`` says why.

    Example::

        client.prompt_and_wait("swap 1 ETH", raise_on_failure=True)  # may raise JobFailedError
    """


class JobCancelledError(JobError):
    """The job ended ``cancelled``.

    Example::

        client.prompt_and_wait("swap 1 ETH", raise_on_failure=True)  # may raise JobCancelledError
    """
