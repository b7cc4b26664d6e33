"""The client's own wire models: job statuses, prompt answers, batch and retry results.

The client keeps these apart from the simulator's models on purpose: if both sides shared
them, a wrong field would be wrong on both sides and no contract could catch it.

Parsing is strict about what it needs (a job status must have a ``jobId`` and a known
``status``; documented fields must have their documented types) and lenient about what it
does not know: unknown fields land in ``extra`` and are never rejected.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bankr_client.errors import BankrError, JobCancelledError, JobFailedError, ProtocolError

__all__ = [
    "BatchItem",
    "JobStatus",
    "JobStatusName",
    "Price",
    "PromptResponse",
    "RetryAttempt",
    "RetryResult",
    "StatusUpdate",
]


class JobStatusName(enum.StrEnum):
    """The five documented job statuses; the last three are terminal.

    Example::

        JobStatusName("cancelled").is_terminal  # True
    """

    #: Accepted and queued; the agent has not started. Cancellable.
    PENDING = "pending"
    #: The agent is working on it; ``startedAt`` is set. Cancellable.
    PROCESSING = "processing"
    #: Finished successfully: ``response`` (and maybe ``transactions``/``richData``) is set.
    COMPLETED = "completed"
    #: Finished unsuccessfully: ``error`` says why. Still HTTP 200 with ``success: true``.
    FAILED = "failed"
    #: Stopped by an accepted cancel request; ``cancelledAt`` is set.
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the job can no longer change (completed, failed or cancelled)."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatusName.COMPLETED, JobStatusName.FAILED, JobStatusName.CANCELLED})
_NAMES = frozenset(name.value for name in JobStatusName)


def _bad(what: str, data: Any) -> ProtocolError:
    return ProtocolError(f"not a valid {what}: {data!r:.200}")


def _opt(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = data.get(key)
    if value is None:
        return None
    # bool is an int subclass; never accept it where a number is documented.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise ProtocolError(f"{what}: field {key!r} has the wrong type: {value!r:.100}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _timestamp(data: Mapping[str, Any], key: str, what: str) -> _dt.datetime | None:
    value = _opt(data, key, (str, int, float), what)
    return None if value is None else _parse_timestamp(value, what=f"{what} {key}")


def _parse_timestamp(value: str | float, *, what: str = "timestamp") -> _dt.datetime:
    """An aware UTC datetime from an ISO-8601 string (``Z`` or offset; naive means UTC) or
    from unix milliseconds.

    Example::

        _parse_timestamp("2025-01-15T10:30:03.000Z").isoformat()
        # '2025-01-15T10:30:03+00:00'
    """
    if isinstance(value, bool):
        raise ProtocolError(f"{what}: not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return _dt.datetime.fromtimestamp(value / 1000, tz=_dt.UTC)
    try:
        stamp = _dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ProtocolError(f"{what}: not an ISO-8601 timestamp: {value!r:.60}") from exc
    return stamp.replace(tzinfo=_dt.UTC) if stamp.tzinfo is None else stamp


def _items(data: Mapping[str, Any], key: str, what: str) -> tuple[Any, ...]:
    value = _opt(data, key, list, what)
    return () if value is None else tuple(value)


@dataclass(frozen=True)
class StatusUpdate:
    """One progress message of a running job (``statusUpdates[]``).

    Example::

        StatusUpdate.from_dict({"message": "Fetching best route...",
                                "timestamp": "2025-01-15T10:30:02.000Z"})
    """

    message: str | None
    timestamp: _dt.datetime | None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> StatusUpdate:
        """Parse one ``statusUpdates`` entry; raises :class:`ProtocolError` on a bad shape."""
        if not isinstance(data, Mapping):
            raise _bad("status update", data)
        return cls(
            message=_opt(data, "message", str, "status update"),
            timestamp=_timestamp(data, "timestamp", "status update"),
            extra={k: v for k, v in data.items() if k not in ("message", "timestamp")},
        )


_JOB_FIELDS = frozenset(
    {
        "success", "jobId", "threadId", "status", "prompt", "response", "transactions",
        "richData", "statusUpdates", "error", "processingTime", "cancellable", "createdAt",
        "startedAt", "completedAt", "cancelledAt",
    }
)  # fmt: skip


def _status_name(data: Mapping[str, Any], what: str) -> JobStatusName:
    value = data.get("status")
    if isinstance(value, str) and value in _NAMES:
        return JobStatusName(value)
    raise _bad(what, data)


def _job_id(data: Mapping[str, Any], what: str) -> str:
    job_id = data.get("jobId")
    if not isinstance(job_id, str) or not job_id:
        raise _bad(what, data)
    return job_id


def _check_success(data: Mapping[str, Any], what: str) -> None:
    if _opt(data, "success", bool, what) is False:
        raise ProtocolError(f"{what}: a 2xx body with success=false: {dict(data)!r:.200}")


@dataclass(frozen=True)
class JobStatus:
    """A job as ``GET /agent/job/{id}`` (or ``/v2/job/{id}``, or a cancel) reports it.

    Timestamps are aware UTC datetimes, ``processing_time`` is milliseconds, and every field
    the client does not know is kept in ``extra``. ``raw`` is the decoded body.

    Example::

        job = JobStatus.from_dict({"success": True, "jobId": "job_1", "status": "completed",
                                   "response": "ETH is $3,000", "processingTime": 3000})
        assert job.is_terminal and job.response == "ETH is $3,000"
    """

    job_id: str
    status: JobStatusName
    thread_id: str | None = None
    prompt: str | None = None
    response: str | None = None
    transactions: tuple[Any, ...] = ()
    rich_data: tuple[Any, ...] = ()
    status_updates: tuple[StatusUpdate, ...] = ()
    error: str | None = None
    processing_time: int | None = None
    cancellable: bool | None = None
    created_at: _dt.datetime | None = None
    started_at: _dt.datetime | None = None
    completed_at: _dt.datetime | None = None
    cancelled_at: _dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        """Whether polling can stop: completed, failed or cancelled."""
        return self.status.is_terminal

    @classmethod
    def from_dict(cls, data: Any) -> JobStatus:
        """Parse a decoded JSON body; raises :class:`ProtocolError` if it is not a job status.

        An error body such as ``{"error": "Job not found", "message": ...}`` has no ``jobId``
        and no ``status`` and is therefore rejected, never mistaken for a job.
        """
        what = "job status"
        if not isinstance(data, Mapping):
            raise _bad(what, data)
        _check_success(data, what)
        processing_time = _opt(data, "processingTime", (int, float), what)
        if isinstance(processing_time, float):
            if not processing_time.is_integer():
                raise _bad(what, data)
            processing_time = int(processing_time)
        return cls(
            job_id=_job_id(data, what),
            status=_status_name(data, what),
            thread_id=_opt(data, "threadId", str, what),
            prompt=_opt(data, "prompt", str, what),
            response=_opt(data, "response", str, what),
            transactions=_items(data, "transactions", what),
            rich_data=_items(data, "richData", what),
            status_updates=tuple(
                StatusUpdate.from_dict(item) for item in _items(data, "statusUpdates", what)
            ),
            error=_opt(data, "error", str, what),
            processing_time=processing_time,
            cancellable=_opt(data, "cancellable", bool, what),
            created_at=_timestamp(data, "createdAt", what),
            started_at=_timestamp(data, "startedAt", what),
            completed_at=_timestamp(data, "completedAt", what),
            cancelled_at=_timestamp(data, "cancelledAt", what),
            extra={k: v for k, v in data.items() if k not in _JOB_FIELDS},
            raw=dict(data),
        )


@dataclass(frozen=True)
class Price:
    """What an x402 prompt cost: ``amount`` in the asset's atomic units (USDC: 6 decimals).

    Example::

        Price(amount="100000", asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")  # $0.10
    """

    amount: str
    asset: str | None = None


_PROMPT_FIELDS = frozenset({"success", "jobId", "threadId", "status", "message", "price"})


@dataclass(frozen=True)
class PromptResponse:
    """The answer to a prompt: ``202 {success, jobId, threadId, status, message}``.

    The x402 flavour has no ``threadId`` (``thread_id`` is ``None``) but adds ``price``.

    Example::

        r = PromptResponse.from_dict({"success": True, "jobId": "job_1", "threadId": "thr_1",
                                      "status": "pending", "message": "Job created"})
        assert r.job_id == "job_1" and r.price is None
    """

    job_id: str
    status: JobStatusName
    thread_id: str | None = None
    message: str | None = None
    price: Price | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Any) -> PromptResponse:
        """Parse a decoded JSON body; raises :class:`ProtocolError` on a bad shape."""
        what = "prompt response"
        if not isinstance(data, Mapping):
            raise _bad(what, data)
        _check_success(data, what)
        price = _opt(data, "price", Mapping, what)
        parsed_price = None
        if price is not None:
            amount = _opt(price, "amount", (str, int), what)
            if amount is None:
                raise _bad(what, data)
            parsed_price = Price(amount=str(amount), asset=_opt(price, "asset", str, what))
        return cls(
            job_id=_job_id(data, what),
            status=_status_name(data, what),
            thread_id=_opt(data, "threadId", str, what),
            message=_opt(data, "message", str, what),
            price=parsed_price,
            extra={k: v for k, v in data.items() if k not in _PROMPT_FIELDS},
            raw=dict(data),
        )


@dataclass(frozen=True)
class BatchItem:
    """One prompt of :meth:`~bankr_client.BankrClient.prompt_many`: its final status or error.

    Example::

        for item in client.prompt_many(["price of ETH", "price of BTC"]):
            print(item.prompt, item.result.status if item.ok else item.error)
    """

    prompt: str
    result: JobStatus | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """Whether the prompt reached a terminal status (any of the three) without an error."""
        return self.error is None and self.result is not None


@dataclass(frozen=True)
class RetryAttempt:
    """One prompt of :meth:`~bankr_client.BankrClient.with_retry`.

    ``delay`` is the backoff slept before it (0 for the first), ``job_id`` is set once the
    prompt was accepted (and therefore paid for), ``status`` is the job's final status, and
    ``error`` what stopped it otherwise.

    Example::

        RetryAttempt(number=0, delay=0.0, job_id="job_1", status=None, error=None)
    """

    number: int
    delay: float
    job_id: str | None
    status: JobStatus | None
    error: BankrError | None


@dataclass(frozen=True)
class RetryResult:
    """The outcome of :meth:`~bankr_client.BankrClient.with_retry`.

    ``final`` is the last job status seen (``None`` if no job ever reached one), ``attempts``
    every prompt made, ``paid_jobs`` how many prompts were accepted (each one is a job that is
    paid for), and ``error`` what stopped the retries early, if anything did.

    Example::

        result = client.with_retry("swap 10 USDC to ETH")
        print(result.succeeded, len(result.attempts), result.paid_jobs)
        job = result.unwrap()   # the completed JobStatus, or raises
    """

    final: JobStatus | None
    attempts: tuple[RetryAttempt, ...]
    paid_jobs: int
    error: BankrError | None = None

    @property
    def succeeded(self) -> bool:
        """Whether the last attempt completed."""
        return self.final is not None and self.final.status is JobStatusName.COMPLETED

    def unwrap(self) -> JobStatus:
        """The completed status; else raises ``error``, or JobFailedError/JobCancelledError."""
        if self.error is not None:
            raise self.error
        assert self.final is not None
        if self.final.status is JobStatusName.FAILED:
            raise JobFailedError(self.final)
        if self.final.status is JobStatusName.CANCELLED:
            raise JobCancelledError(self.final)
        return self.final
