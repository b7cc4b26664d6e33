"""mockbankr's exception tree.

::

    MockbankrError
    ├── ConfigError (ValueError)        bad settings, flags or environment variables
    │   ├── FixtureError                a fixture file (timing table, rules) is invalid
    │   └── InvalidNumber               a number that came in is malformed or out of
    │                                   bounds (``field``); see :mod:`mockbankr.validate`
    ├── ApiError                        an answer in the real API's error shape;
    │                                   the app turns it into {"error", "message", ...}
    ├── JobError                        a job request the core refuses (``job_id``)
    │   ├── JobNotFound                 no such job for this owner (or it vanished)
    │   ├── JobFinished                 cancelling or steering a finished job (``status``)
    │   └── JobIdCollision              a fresh job id is taken (a store race)
    ├── UnknownCategory (ValueError)    a job shape names no timing category (``category``)
    ├── DailyLimitExceeded              an account's prompts for the day are used up
    ├── AccessDenied                    an API key may not do this (``reason``: a Denial)
    ├── PaymentRejected                 an X-PAYMENT header was refused (``reason``)
    ├── JobAuthError                    signed /v2/job headers name no wallet (``reason``)
    ├── StoreUnavailable                the shared state store (Redis) cannot be reached
    ├── ContractError (ValueError)      a contract file is invalid, or cannot be run
    └── VerdictsFailed (AssertionError) a client failed a behaviour check (``report``)

The core (clock, timing, jobs, store, ledger, rules, limits, the simulator) raises
the domain errors and knows no HTTP. One table at the app's edge
(:data:`mockbankr.wire.DOMAIN_ERRORS`) maps each to the documented wire error, an
:class:`ApiError`; every error body the server sends is built from one, in
:mod:`mockbankr.wire`, so the wire shape lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "AccessDenied",
    "ApiError",
    "ConfigError",
    "ContractError",
    "DailyLimitExceeded",
    "FixtureError",
    "InvalidNumber",
    "JobAuthError",
    "JobError",
    "JobFinished",
    "JobIdCollision",
    "JobNotFound",
    "MockbankrError",
    "PaymentRejected",
    "StoreUnavailable",
    "UnknownCategory",
    "VerdictsFailed",
]


class MockbankrError(Exception):
    """Root of every exception mockbankr raises on purpose."""


class ConfigError(MockbankrError, ValueError):
    """A setting, flag or environment variable is invalid or contradicts another.

    Example::

        raise ConfigError("--speed must be positive, got -1")
    """


class FixtureError(ConfigError):
    """A fixture file is invalid. Carries the file and the offending key.

    Example::

        FixtureError("unknown key", path="fixtures/timing.toml", key="categories.swap.colour")
    """

    def __init__(self, message: str, *, path: str, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {message}")


class InvalidNumber(ConfigError):
    """A number from a request, a rules file or a flag is malformed or out of its bound.

    ``field`` names it (``times``, ``X-Mockbankr-Latency``, ``--speed`` ...); the
    message says what was expected. The server answers it with a 400.

    Example::

        InvalidNumber("times: expected an integer within 1..2147483648, got 0", field="times")
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class ApiError(MockbankrError):
    """An error answer in the Bankr wire shape: ``{"error": ..., "message": ...}``.

    ``extra`` holds additional body fields (the daily-limit 429 carries
    ``resetAt``, ``limit`` and ``used``), ``headers`` extra response headers.

    Example::

        raise ApiError(404, "Job not found", "No job found with ID job_X")
    """

    def __init__(
        self,
        status_code: int,
        error: str,
        message: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status_code} {error}: {message}")
        self.status_code = status_code
        self.error = error
        self.message = message
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body the server sends for this error."""
        return {"error": self.error, "message": self.message, **self.extra}


class JobError(MockbankrError):
    """The core refused a request about one job; ``job_id`` names it."""

    def __init__(self, job_id: str, message: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobNotFound(JobError):
    """No job with this id belongs to the caller (missing, foreign or vanished alike).

    Example::

        try:
            await sim.get("job_X", owner="key:bk_1")
        except JobNotFound as exc:
            exc.job_id  # "job_X"
    """

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id, f"no job {job_id}")


class JobFinished(JobError):
    """A finished job cannot be changed: ``action`` (``"cancel"`` or ``"steer"``) was
    refused because the job is ``status`` (``"completed"`` or ``"failed"``).

    Example::

        JobFinished("job_1", "completed", action="cancel")
    """

    def __init__(self, job_id: str, status: str, *, action: Literal["cancel", "steer"]) -> None:
        super().__init__(job_id, f"cannot {action} job {job_id}: it is already {status}")
        self.status = status
        self.action = action


class JobIdCollision(JobError):
    """A freshly drawn job id was stored by someone else first (a store race)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id, f"job id collision on {job_id}")


class UnknownCategory(MockbankrError, ValueError):
    """A job shape or a rule names a category the timing table does not have.

    Example::

        UnknownCategory("teleport", known=("price", "swap"))
    """

    def __init__(self, category: str, *, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown category {category!r} (known: {', '.join(known)})")
        self.category = category
        self.known = known


class DailyLimitExceeded(MockbankrError):
    """An owner has sent ``limit`` prompts in its current 24-hour window.

    ``used`` is the count so far, ``reset_at`` (unix seconds) when the window closes.

    Example::

        DailyLimitExceeded("key:bk_1", limit=100, used=100, reset_at=1_764_486_400.0)
    """

    def __init__(
        self, owner: str, *, limit: int, used: int, reset_at: float, upgrade: bool = True
    ) -> None:
        super().__init__(f"{owner} has used {used} of {limit} prompts until {reset_at}")
        self.owner = owner
        self.limit = limit
        self.used = used
        self.reset_at = reset_at
        #: Whether Bankr Club would raise the limit (not for a Club account).
        self.upgrade = upgrade


class _ReasonedError(MockbankrError):
    """An error carrying a machine-readable ``reason`` and a human ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class AccessDenied(_ReasonedError):
    """An API key check refused the caller (no HTTP here: :mod:`mockbankr.wire` maps it).

    ``reason`` is a :class:`~mockbankr.accounts.Denial`, ``detail`` prose.

    Example::

        raise AccessDenied(Denial.INVALID_KEY, "the key was revoked")
    """


class PaymentRejected(_ReasonedError):
    """An X-PAYMENT header was refused.

    ``reason`` is a :class:`~mockbankr.x402.PaymentReason`, ``detail`` prose.

    Example::

        try:
            verify_payment(header, terms, now=clock.now())
        except PaymentRejected as exc:
            body = challenge_body(terms, url, error=exc.reason)
    """


class JobAuthError(_ReasonedError):
    """Signed ``/v2/job/*`` headers authenticate no wallet.

    ``reason`` is a :class:`~mockbankr.job_auth.JobAuthReason`, ``detail`` prose.

    Example::

        JobAuthError(JobAuthReason.MESSAGE_MISMATCH, "expected 'Cancel job job_1'")
    """


class StoreUnavailable(MockbankrError):
    """The shared state store cannot be reached (``url``, without a password; ``detail``).

    Raised by the Redis store for a lost or timed-out connection; the server answers
    503 and serves again once the store is back.

    Example::

        StoreUnavailable("redis://127.0.0.1:6379/0", "Connection refused")
    """

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(f"the state store {url} cannot be reached: {detail}")


class ContractError(MockbankrError, ValueError):
    """A contract file is invalid, or a contract cannot be recorded, replayed or verified.

    Example::

        try:
            load_contract(path)
        except ContractError as exc:
            print(exc)  # names the file and the offending key
    """


class VerdictsFailed(MockbankrError, AssertionError):
    """A client failed at least one verdict check; the message is the readable report.

    ``report`` is the :class:`~mockbankr.verdicts.Report` (any object with ``describe()``).

    Example::

        raise VerdictsFailed(report)
    """

    def __init__(self, report: Any) -> None:
        super().__init__(report.describe())
        self.report = report
