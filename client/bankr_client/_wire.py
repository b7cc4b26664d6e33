"""From httpx objects to the client's models and errors, in one place, with no I/O.

Every HTTP answer passes through here: a 2xx is parsed into a model (or raises
:class:`ProtocolError`), anything else becomes the matching :class:`APIError` subclass, and an
httpx exception becomes a :class:`TransportError`. An error body is never parsed as a job.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import math
from collections.abc import Mapping
from typing import Any

import httpx

from bankr_client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RequestNotSentError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)
from bankr_client.models import JobStatus, PromptResponse

__all__ = [
    "error_from_response",
    "json_body",
    "parse_job_response",
    "parse_prompt_response",
    "retry_after_seconds",
    "transport_error",
]

_SIMPLE: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
}

#: httpx failures where no byte of the request can have reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def transport_error(exc: httpx.RequestError) -> TransportError:
    """The client's error for an httpx failure; raise it ``from exc`` to keep the cause."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, _NOT_SENT):
        return RequestNotSentError(f"request not sent ({text})")
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(f"no answer in time ({text})")
    return TransportError(f"transport failure ({text})")


def _content(response: httpx.Response) -> str:
    return response.text[:500]


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """``Retry-After`` in seconds (delta-seconds, or an HTTP date relative to ``Date``).

    An HTTP date without a ``Date`` header cannot be turned into a delay without reading the
    wall clock, so it yields ``None`` (the policy's own backoff applies).

    Example::

        retry_after_seconds(httpx.Headers({"Retry-After": "7"}))  # 7.0
    """
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
        sent = email.utils.parsedate_to_datetime(headers.get("date", ""))
        return max(0.0, (when - sent).total_seconds())
    except (TypeError, ValueError, IndexError):  # unparsable, or naive minus aware
        return None


def error_from_response(response: httpx.Response) -> APIError:
    """The :class:`APIError` subclass for a non-2xx answer.

    Example::

        error_from_response(httpx.Response(404, json={"error": "Job not found"}))
        # NotFoundError(...)
    """
    data = _decode(response)
    body: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    error = body.get("error") if isinstance(body.get("error"), str) else None
    message = body.get("message") if isinstance(body.get("message"), str) else None
    if data is None and message is None and response.content:
        message = _content(response).strip()[:200] or None
    status = response.status_code
    if status in _SIMPLE:
        return _SIMPLE[status](status, error, message, body)
    if status == 402:
        accepts = body.get("accepts")
        version = body.get("x402Version")
        return PaymentRequiredError(
            status,
            error,
            message,
            body,
            accepts=[a for a in accepts if isinstance(a, Mapping)]
            if isinstance(accepts, list)
            else (),
            x402_version=_int(version),
        )
    if status == 429:
        reset_ms = body.get("resetAt")
        reset_at = None
        if isinstance(reset_ms, int | float) and not isinstance(reset_ms, bool):
            try:
                reset_at = _dt.datetime.fromtimestamp(reset_ms / 1000, tz=_dt.UTC)
            except (OverflowError, OSError, ValueError):
                reset_at = None
        return RateLimitError(
            status,
            error,
            message,
            body,
            retry_after=retry_after_seconds(response.headers),
            reset_at=reset_at,
            limit=_int(body.get("limit")),
            used=_int(body.get("used")),
        )
    if 500 <= status <= 599:
        return ServerError(
            status, error, message, body, retry_after=retry_after_seconds(response.headers)
        )
    return APIError(status, error, message, body)


def json_body(response: httpx.Response) -> Any:
    """The decoded body of a 2xx answer, or :class:`ProtocolError` if it is not JSON."""
    try:
        return response.json()
    except ValueError:
        raise ProtocolError(
            f"HTTP {response.status_code} with a body that is not JSON",
            status_code=response.status_code,
            content=_content(response),
        ) from None


def _checked(response: httpx.Response) -> Any:
    if not response.is_success:
        raise error_from_response(response)
    return json_body(response)


def _with_context(exc: ProtocolError, response: httpx.Response) -> ProtocolError:
    return ProtocolError(str(exc), status_code=response.status_code, content=_content(response))


def parse_job_response(response: httpx.Response) -> JobStatus:
    """A job status from a 2xx answer; an :class:`APIError` for any other status."""
    data = _checked(response)
    try:
        return JobStatus.from_dict(data)
    except ProtocolError as exc:
        raise _with_context(exc, response) from None


def parse_prompt_response(response: httpx.Response) -> PromptResponse:
    """A prompt answer from a 2xx answer; an :class:`APIError` for any other status."""
    data = _checked(response)
    try:
        return PromptResponse.from_dict(data)
    except ProtocolError as exc:
        raise _with_context(exc, response) from None
