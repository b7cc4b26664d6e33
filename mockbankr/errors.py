"""mockbankr's exception tree.

::

    MockbankrError
    ├── ConfigError (ValueError)        bad settings, flags or environment variables
    │   ├── FixtureError                a fixture file (timing table, rules) is invalid
    │   └── InvalidNumber               a number that came in is malformed or out of
    │                                   bounds (``field``); see :mod:`mockbankr.validate`
    ├── ApiError                        an answer in the real API's error shape;
    │                                   the app turns it into {"error", "message", ...}
    ├── PaymentRejected                 an X-PAYMENT header was refused (``reason``)
    ├── JobAuthError                    signed /v2/job headers name no wallet (``reason``)
    └── ContractError (ValueError)      a contract file is invalid, or cannot be run

Every error body the server sends is built from an :class:`ApiError`, in
:mod:`mockbankr.wire`, so the wire shape lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ApiError",
    "ConfigError",
    "ContractError",
    "FixtureError",
    "InvalidNumber",
    "JobAuthError",
    "MockbankrError",
    "PaymentRejected",
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


class _ReasonedError(MockbankrError):
    """An error carrying a machine-readable ``reason`` and a human ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


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

    ``reason`` is a :class:`~mockbankr.x402.JobAuthReason`, ``detail`` prose.

    Example::

        JobAuthError(JobAuthReason.MESSAGE_MISMATCH, "expected 'Cancel job job_1'")
    """


class ContractError(MockbankrError, ValueError):
    """A contract file is invalid, or a contract cannot be recorded, replayed or verified.

    Example::

        try:
            load_contract(path)
        except ContractError as exc:
            print(exc)  # names the file and the offending key
    """
