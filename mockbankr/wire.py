"""The Bankr wire format, built in one place: JSON encoding, timestamps and error bodies.

Error texts and status codes are the documented ones (``docs/wire.md``
sections 1.3-1.5). Handlers raise the :class:`~mockbankr.errors.ApiError` these
functions return; no handler writes an error body by hand. The core raises
domain errors instead, and :data:`DOMAIN_ERRORS` is the one table that maps
each to its wire error, at the app's edge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import msgspec
from starlette.responses import Response

from mockbankr.accounts import Denial
from mockbankr.clock import iso
from mockbankr.errors import (
    AccessDenied,
    ApiError,
    DailyLimitExceeded,
    JobFinished,
    JobIdCollision,
    JobNotFound,
    MockbankrError,
    StoreUnavailable,
    UnknownCategory,
)

__all__ = [
    "DOMAIN_ERRORS",
    "JSONResponse",
    "MAX_JSON_DEPTH",
    "MAX_PROMPT_LENGTH",
    "PROMPT_SPACE",
    "SUBSCRIPTION_REMEDIATION",
    "access_denied",
    "already_finished",
    "api_error",
    "auth_required",
    "body_too_large",
    "daily_limit_exceeded",
    "decode_json",
    "error_response",
    "forbidden",
    "headers_too_large",
    "invalid_json",
    "invalid_request",
    "job_id_required",
    "job_not_found",
    "method_not_allowed",
    "not_steerable",
    "prompt_too_long",
    "request_timeout",
    "route_not_found",
    "server_error",
    "store_unavailable",
    "unsupported_media_type",
]

#: The documented maximum prompt length, in characters.
MAX_PROMPT_LENGTH = 10_000

#: A prompt of only these (ASCII white space) is no prompt: the documented 400. The same
#: set in the OpenAPI pattern, since Python's and ECMAScript's ``\s`` differ.
PROMPT_SPACE = " \t\n\v\f\r"

_encoder = msgspec.json.Encoder()

#: Deepest JSON nesting a request body may have.
MAX_JSON_DEPTH = 64


def _depth(body: bytes) -> int:
    """The deepest bracket nesting of a JSON text, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def decode_json(body: bytes) -> Any:
    """Decode an untrusted JSON body, refusing nesting deeper than :data:`MAX_JSON_DEPTH`.

    msgspec recurses in C; importing eth-account (py_ecc) raises Python's
    recursion limit to 100,000, past the C stack, so a body of ~40 KB of ``[``
    would crash the process instead of raising. Counting brackets first costs
    nothing for ordinary bodies, which have far fewer than the limit.

    Example::

        decode_json(b'{"prompt": "hi"}') == {"prompt": "hi"}
    """
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _depth(body) > MAX_JSON_DEPTH:
        raise msgspec.DecodeError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return msgspec.json.decode(body)


class JSONResponse(Response):
    """A JSON response encoded with msgspec (several times faster than ``json``).

    Example::

        return JSONResponse({"success": True}, status_code=202)
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def error_response(error: ApiError) -> JSONResponse:
    """The answer of an API error: its JSON body, status and headers.

    Example::

        error_response(job_not_found("job_X")).status_code  # 404
    """
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers or None)


def invalid_request() -> ApiError:
    return ApiError(400, "Invalid request", "Request body must include a prompt")


def invalid_json(detail: str) -> ApiError:
    # Undocumented case; same error name as a missing prompt, with a message that helps.
    return ApiError(400, "Invalid request", f"Request body must be a JSON object ({detail})")


def prompt_too_long() -> ApiError:
    return ApiError(400, "Prompt too long", "Prompt must be 10,000 characters or less")


def auth_required() -> ApiError:
    return ApiError(401, "Authentication required", "Please provide a valid API key")


def job_id_required() -> ApiError:
    return ApiError(400, "Job ID required", "Please provide a job ID")


def job_not_found(job_id: str) -> ApiError:
    return ApiError(404, "Job not found", f"No job found with ID {job_id}")


def already_finished(job_id: str, status: str) -> ApiError:
    """Cancelling a completed or failed job (the message text is not documented)."""
    return ApiError(
        400, f"Job already {status}", f"Job {job_id} is already {status} and cannot be cancelled"
    )


def server_error(detail: str) -> ApiError:
    return ApiError(500, "Internal server error", detail)


def store_unavailable(url: str, detail: str) -> ApiError:
    """503: the shared state store is unreachable; the request changed nothing."""
    return ApiError(
        503,
        "Service unavailable",
        f"mockbankr's state store ({url}) cannot be reached ({detail}); retry shortly",
        headers={"Retry-After": "1"},
    )


def route_not_found(method: str, path: str) -> ApiError:
    return ApiError(404, "Not found", f"No route for {method} {path}")


def method_not_allowed(
    method: str, path: str, allowed: Mapping[str, str] | None = None
) -> ApiError:
    return ApiError(
        405, "Method not allowed", f"{method} is not allowed on {path}", headers=allowed
    )


def not_steerable(status: str) -> ApiError:
    """Forcing the outcome of a finished job, on the control plane."""
    return ApiError(409, f"Job already {status}", "Only a job that has not finished can be steered")


#: The documented 401 message (docs/wire.md 1.8, api-workflow.md), for a missing and a wrong key.
_KEY_401_MESSAGE = "API key is missing or invalid"

#: ``subscription_required``'s ``remediation`` list (its items are not documented).
SUBSCRIPTION_REMEDIATION = (
    "Join Bankr Club at https://bankr.bot/club for 1,000 prompts a day",
    "Or turn on Max Mode with LLM credit (bankr llm credits add <usd>) for 100 prompts a day",
)

_DENIALS: dict[Denial, tuple[int, str, str]] = {
    # docs/wire.md 1.8 (error-handling.md): a missing key; message from api-workflow.md.
    Denial.KEY_REQUIRED: (401, "API key required", _KEY_401_MESSAGE),
    # docs/wire.md 1.8: a wrong, revoked or rotated key.
    Denial.INVALID_KEY: (401, "Invalid API key", _KEY_401_MESSAGE),
    # docs/wire.md 1.3 (DOCS authentication).
    Denial.IP_NOT_ALLOWED: (
        403,
        "IP address not allowed",
        "IP address not allowed for this API key",
    ),
    # docs/wire.md 1.8 (api-workflow.md body example).
    Denial.AGENT_API_DISABLED: (
        403,
        "Agent API access not enabled",
        "Enable agent access for your API key",
    ),
    # docs/wire.md 1.8 (error-handling.md, safety.md): the message and remediation are ours.
    Denial.SUBSCRIPTION_REQUIRED: (
        403,
        "subscription_required",
        "Agent API prompts need Bankr Club, or Max Mode with LLM credit",
    ),
}


def access_denied(exc: AccessDenied) -> ApiError:
    """The documented answer to a refused key check (docs/wire.md 1.3, 1.8).

    Example::

        access_denied(AccessDenied(Denial.INVALID_KEY, "revoked")).status_code == 401
    """
    reason = Denial(exc.reason)
    status, error, message = _DENIALS[reason]
    extra = (
        {"remediation": list(SUBSCRIPTION_REMEDIATION)}
        if reason is Denial.SUBSCRIPTION_REQUIRED
        else None
    )
    return ApiError(status, error, message, extra=extra)


def daily_limit_exceeded(
    limit: int, used: int, reset_at: float, *, upgrade: bool = True
) -> ApiError:
    """The documented 429 of the daily quota (docs/wire.md 1.8, safety.md): ``resetAt`` in Unix ms.

    The upgrade sentence is left out for a Bankr Club account, which has nothing to
    upgrade to (the documented example is a 100-message account).
    """
    sentence = " Upgrade to Bankr Club for 1000 messages/day." if upgrade else ""
    return ApiError(
        429,
        "Daily limit exceeded",
        f"You have reached your daily API limit of {limit} messages.{sentence}"
        f" Resets at {iso(reset_at)}",
        extra={"resetAt": round(reset_at * 1000), "limit": limit, "used": used},
    )


def _job_finished(exc: JobFinished) -> ApiError:
    if exc.action == "cancel":
        return already_finished(exc.job_id, exc.status)
    return not_steerable(exc.status)


DOMAIN_ERRORS: Final[Mapping[type[MockbankrError], Callable[[Any], ApiError]]] = MappingProxyType(
    {
        JobNotFound: lambda exc: job_not_found(exc.job_id),
        JobFinished: _job_finished,
        JobIdCollision: lambda exc: server_error("job id collision"),
        UnknownCategory: lambda exc: invalid_json(
            f"unknown category {exc.category!r} in a job rule"
        ),
        DailyLimitExceeded: lambda exc: daily_limit_exceeded(
            exc.limit, exc.used, exc.reset_at, upgrade=exc.upgrade
        ),
        AccessDenied: access_denied,
        StoreUnavailable: lambda exc: store_unavailable(exc.url, exc.detail),
    }
)
"""Each domain error the core raises, and how it answers on the wire: the one table."""


def api_error(exc: MockbankrError) -> ApiError:
    """The wire error of a domain error (by the first of its classes in :data:`DOMAIN_ERRORS`).

    Raises ``KeyError`` for a domain error that has no wire form: a bug.

    Example::

        api_error(JobNotFound("job_X")).body()["message"] == "No job found with ID job_X"
    """
    for cls in type(exc).__mro__:
        answer = DOMAIN_ERRORS.get(cls)
        if answer is not None:
            return answer(exc)
    raise KeyError(f"no wire error for {type(exc).__name__}")


def body_too_large(limit: int) -> ApiError:
    """A request body over ``limit`` bytes, off the prompt routes (those say Prompt too long)."""
    return ApiError(413, "Payload too large", f"Request bodies are limited to {limit} bytes")


def headers_too_large(limit: int) -> ApiError:
    return ApiError(
        431, "Request header fields too large", f"Request headers are limited to {limit} bytes"
    )


def request_timeout(seconds: float) -> ApiError:
    return ApiError(408, "Request timeout", f"The request body stalled for {seconds:g} s")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "Unsupported media type", message)
